"""bench.lag: commit -> observer delays per event type, from an observer's events.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.lag import delays, main


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


def test_main_prints_nearest_rank_percentiles_per_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(_line("return.shipped", 100.0 + d, 100.0) for d in range(4, 0, -1)))
    monkeypatch.setattr("sys.argv", ["bench.lag", str(events)])
    main()
    printed = capsys.readouterr().out.split()
    assert printed == ["return.shipped", "4", "p50", "2.00", "p90", "4.00", "max", "4.00", "s"]
