"""The machine speed probe (bench/speed.py): the median CPU time of its rounds, in ms."""

from __future__ import annotations

from bench import speed


def test_the_probe_reports_the_median_round_in_cpu_ms(monkeypatch):
    rounds = iter([0.0, 0.100, 1.0, 1.300, 2.0, 2.050, 3.0, 3.200, 4.0, 4.900])  # 100, 300, 50, 200, 900 ms
    monkeypatch.setattr(speed.time, "process_time", lambda: next(rounds))
    monkeypatch.setattr(speed, "_workload", lambda: 0)
    assert speed.probe_ms() == 200.0
