"""Prometheus metrics of the metrics service's own work (created once per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

events_applied = Counter(
    "metrics_events_total",
    "Events consumed into facts; outcome `stale` means a newer version was already stored.",
    ["type", "outcome"],
)
flag_changes = Counter(
    "metrics_buyer_flag_changes_total", "Buyer flag state changes (each emits one event).", ["flagged"]
)
assessments = Counter("metrics_buyer_assessments_total", "Buyer abuse assessments run.", ["trigger"])
flagged_buyers = Gauge("metrics_flagged_buyers", "Buyers flagged for abuse, as of the last review or rebuild.")
report_seconds = Histogram(
    "metrics_report_seconds",
    "Time to compute a report from facts.",
    ["report"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
