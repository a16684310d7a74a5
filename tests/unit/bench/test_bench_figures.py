"""The bench's figures from what a run recorded: event traffic, ratios to the ceilings, latencies, lateness."""

from __future__ import annotations

from bench.figures import ceiling_ratios, latency_figures, schedule_figures, traffic
from bench.load import Outcome, Plan


def test_traffic_counts_each_event_once_per_consuming_service_and_one_notification_per_email() -> None:
    subscribers = {"return.created": 3, "refund.issued": 2, "notification.sent": 1}
    published, delivered = traffic({"return.created": 10, "refund.issued": 10, "return.expired": 4}, 70, subscribers)
    assert published == 10 + 10 + 4 + 70
    assert delivered == 10 * 3 + 10 * 2 + 4 * 0 + 70 * 1


def test_ceiling_ratios_are_shares_of_the_bare_clients_and_none_without_ceilings() -> None:
    ceilings = {"amqp": {"publish_confirmed_per_s": 1000, "consume_ack_per_s": 500}, "mongo": {"find_one_per_s": 0}}
    ratios = ceiling_ratios(ceilings, published=200, delivered=400, commands=300, wall=2.0)
    assert [(r["achieved"], r["ratio_pct"]) for r in ratios] == [(100, 10.0), (200, 40.0), (150, None)]
    assert ceiling_ratios({}, 200, 400, 300, 2.0) == []


def outcome(index: int, return_id: str, started: float, done: float, late_s: float | None = None) -> Outcome:
    return Outcome(Plan(index, "run", 1, "ledger"), return_id, started, done, late_s=late_s)


def test_latencies_run_from_the_receive_call_and_from_the_event_to_its_email() -> None:
    events = [
        {"id": "e1", "type": "return.received", "subject": "r1", "t": 10.1, "time": 10.0},
        {"id": "e2", "type": "return.refunded", "subject": "r1", "t": 10.5, "time": 10.4},
        {"id": "e3", "type": "return.refunded", "subject": "r1", "t": 11.0, "time": 10.4},  # a duplicate: ignored
    ]
    mails = [{"event_id": "e2", "template": "buyer/refunded", "t": 10.9}, {"event_id": "unknown", "t": 12.0}]
    figures = latency_figures(events, mails, [outcome(0, "r1", started=10.0, done=10.2)])
    assert figures["async"]["received -> refunded (from the receive call)"]["p50_ms"] == 500.0
    assert figures["async"]["received -> refunded (from its 200)"]["p50_ms"] == 300.0
    assert figures["async"]["event -> email (SMTP receive)"] == figures["email_by_template"]["buyer/refunded"]
    assert figures["email_by_template"]["buyer/refunded"]["n"] == 1


def test_the_open_loop_schedule_counts_late_starts_and_the_rate_achieved() -> None:
    outcomes = [outcome(i, f"r{i}", 0, 0, late_s=late) for i, late in enumerate([0.01, 0.2, 0.0, 0.0, 0.01])]
    schedule = schedule_figures(outcomes, rate=2.0)
    assert (schedule["started"], schedule["late"], schedule["max_late_ms"]) == (5, 1, 200.0)
    assert schedule["achieved_rate"] == 2.0  # the last started on time: 4 intervals in 2 s
