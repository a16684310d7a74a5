"""How fast this machine runs Python right now: a fixed workload's CPU time, recorded with each run.

On these shared VMs the same code and command have cost from 1x to 2x the CPU per lifecycle on
different hours (the host's load shows neither as steal nor as other processes). A bench run records
this figure before it starts anything, so two runs' CPU figures can be read against the speed each
one ran at; it is a yardstick for comparing runs, not a target.
"""

from __future__ import annotations

import statistics
import time

ROUNDS = 5


def _workload() -> int:
    total = 0
    for i in range(1_000_000):
        total += i * i % 7
    return total


def probe_ms() -> float:
    """CPU ms of the fixed workload: the median of a few rounds (lower is faster)."""
    times = []
    for _ in range(ROUNDS):
        start = time.process_time()
        _workload()
        times.append((time.process_time() - start) * 1000)
    return round(statistics.median(times), 1)
