"""How long each event type took from its commit to the bench's witness, from the observer's log.

    python -m bench.lag OUT/observer/events.jsonl

Per event type: the observer's receive time (`t`) minus the event's own `time` (set when its
state change was committed), as p50 / p90 / max. Under load this is the outbox relay's delay plus
the broker's; bench/RESULTS.md uses it to show a relay falling behind.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from bench.report import percentile


def delays(lines: list[str]) -> dict[str, list[float]]:
    """Seconds from commit to the observer, per event type, sorted; lines without a time are left out."""
    by_type: dict[str, list[float]] = defaultdict(list)
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("time") is not None:
            by_type[record["type"]].append(record["t"] - record["time"])
    return {event_type: sorted(values) for event_type, values in by_type.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", type=Path, help="an observer's events.jsonl")
    args = parser.parse_args()
    for event_type, values in delays(args.events.read_text().splitlines()).items():
        p50, p90 = percentile(values, 50), percentile(values, 90)
        print(f"  {event_type:<22} {len(values):6d}  p50 {p50:6.2f}  p90 {p90:6.2f}  max {values[-1]:6.2f} s")


if __name__ == "__main__":
    main()
