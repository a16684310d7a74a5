"""bench.lag: commit -> observer delays per event type, from an observer's events.jsonl."""

from __future__ import annotations

import json

from bench.lag import delays, quantile


def _line(event_type: str, t: float, time: float | None) -> str:
    return json.dumps({"t": t, "type": event_type, "time": time})


def test_delays_are_per_type_sorted_and_skip_lines_without_a_time() -> None:
    lines = [
        _line("return.created", 10.5, 10.0),
        _line("return.created", 11.2, 11.0),
        _line("return.received", 14.0, 12.0),
        _line("return.received", 13.0, None),
        "not json",
    ]
    found = delays(lines)
    assert found.keys() == {"return.created", "return.received"}
    assert [round(v, 3) for v in found["return.created"]] == [0.2, 0.5]
    assert found["return.received"] == [2.0]


def test_quantile_is_the_nearest_rank_below() -> None:
    values = [float(v) for v in range(1, 11)]
    assert (quantile(values, 0.5), quantile(values, 0.9), quantile(values, 1.0)) == (5.0, 9.0, 10.0)
