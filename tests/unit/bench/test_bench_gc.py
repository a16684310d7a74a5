"""The bench's garbage-collector figures: the measured phase only, per lifecycle and as a share."""

from __future__ import annotations

from bench.figures import gc_summary


def test_gc_summary_counts_the_measured_phase_only() -> None:
    before = {"metrics": {"gc": {"collections": [100, 10, 1], "micros": [500_000, 200_000, 300_000]}}}
    after = {
        "metrics": {"gc": {"collections": [1100, 110, 11], "micros": [1_500_000, 700_000, 1_800_000]}},
        "refunds": {"counts": {}, "micros": {}},  # an older injector: no gc tally, left out
    }
    usage = {"processes": {"metrics": {"cpu_s": 30.0}}}
    summary = gc_summary(before, after, 1000, usage)
    expected = {"collections": [1000, 100, 10], "cpu_s": 3.0, "cpu_ms_per_lifecycle": 3.0, "pct_of_service_cpu": 10.0}
    assert summary == {"metrics": expected}
