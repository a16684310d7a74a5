"""Fault-injection runs: N lifecycles paced so the faults land mid-load, one fault kind per run,
then the bench's exactly-once verification, counted as lost / duplicated / stuck.

    scripts/chaos --fault kill --returns 100                 # one fault kind
    scripts/chaos --fault all --returns 100                  # the matrix: every kind, one run each

The stack is the bench's (bench/stack.py) with everything a fault may hit of its own: its own
RabbitMQ node, MongoDB-wire server and SMTP sink on spare ports (--port-base), so the servers on
the default ports that everyone else uses are never stopped or killed. See bench/README.md.

The modules, in the order a run uses them: kinds (the fault kinds, the log), runs (one run),
driver (the paced load), faults (planned, then injected), drain (waiting for every effect owed),
tally (lost, doubled or stuck, per step), report (Markdown), cli (the command line; `python -m
bench.chaos`).
"""

from bench.chaos.kinds import FAULTS, MATRIX
from bench.chaos.report import render_run
from bench.chaos.runs import Options, run, verdict

__all__ = ["FAULTS", "MATRIX", "Options", "render_run", "run", "verdict"]
