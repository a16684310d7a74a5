"""Buyer flags over time and from stored facts: unflagged once the returns age out, rebuilt after
a change of thresholds, each change published once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.clock import FixedClock
from tests.integration.spans import spans, trace_id_of
from tests.unit.metrics.builders import at, requested, return_event

pytestmark = pytest.mark.integration
__all__ = ["spans"]  # the fixture


def five_returns(buyer_id: str):
    return [
        return_event(requested(f"{buyer_id}-r{i}", buyer_id=buyer_id, seller_id="s", created_at=at(i)))
        for i in range(5)
    ]


async def flagged_then_reviewed(start_metrics, wait_until, buyer_id: str):
    """A buyer flagged for five returns, then the review 90 days after the 2nd: three are left, on
    three orders, under both rules. Answers the service and its clock once the flag is lifted."""
    clock = FixedClock(at(5))
    metrics = await start_metrics(clock, flag_sweep_interval_s=0.05)
    for event in five_returns(buyer_id):
        await metrics.publish(event)
    await wait_until(lambda: metrics.flags(buyer_id), message="buyer.flagged")
    clock.set(at(91, 1))
    await wait_until(lambda: len(metrics.flags(buyer_id)) == 2, message="buyer.unflagged")
    return metrics, clock


async def test_a_flag_is_lifted_once_the_returns_age_out_of_the_window(start_metrics, wait_until):
    metrics, clock = await flagged_then_reviewed(start_metrics, wait_until, "bz")
    assert metrics.flags("bz") == ["buyer.flagged", "buyer.unflagged"]
    assert [e.sequence for e in metrics.published] == [1, 2]
    assert metrics.published[1].data["returns_90d"] == 3
    standing = await metrics.get("/v1/metrics/buyers/bz")
    assert (standing["returns"], standing["flag"]["flagged"], standing["flag"]["version"]) == (3, False, 2)
    assert standing["flag"]["since"] == at(91, 1).isoformat().replace("+00:00", "Z")
    # The review trimmed the buyer's window (kept in their document) to the returns still in it.
    doc = await metrics.db["buyers"].find_one({"_id": "bz"})
    assert sorted(e["id"] for e in doc["window_returns"]) == ["bz-r2", "bz-r3", "bz-r4"]

    # Nothing left to change: later reviews publish nothing more.
    clock.set(at(200))
    await wait_until(
        lambda: metrics.db["buyers"].find_one({"_id": "bz", "review_at": {"$exists": False}}),
        message="no review due any more",
    )
    assert metrics.flags("bz") == ["buyer.flagged", "buyer.unflagged"]


async def test_rebuild_reassesses_every_buyer_from_stored_facts(start_metrics, wait_until):
    clock = FixedClock(at(10))
    lenient = await start_metrics(clock, abuse_max_returns=10, abuse_min_orders=10)
    for event in five_returns("by")[:3] + five_returns("bw")[:1]:
        await lenient.publish(event)
    await wait_until(lambda: _processed(lenient, 4), message="4 events processed")
    assert lenient.published == []
    await lenient.stop()  # its outbox relay would otherwise also serve the shared buyer documents

    # Same stored facts, stricter thresholds (a new deployment): rebuild flags `by` only, once.
    strict = await start_metrics(clock, mongodb_db=lenient.settings.database_name, abuse_max_returns=3)
    forbidden = await strict.http.post("/v1/metrics/rebuild", headers=strict.as_("seller", "s"))
    assert forbidden.status_code == 403
    response = await strict.http.post("/v1/metrics/rebuild", headers=strict.as_("agent", "agent-7"))
    assert response.status_code == 200, response.text
    assert response.json() == {"buyers_assessed": 2, "flagged": 1, "unflagged": 0}
    await wait_until(lambda: strict.flags("by"), message="buyer.flagged after rebuild")
    again = await strict.http.post("/v1/metrics/rebuild", headers=strict.as_("agent", "agent-7"))
    assert again.json() == {"buyers_assessed": 2, "flagged": 0, "unflagged": 0}
    await wait_until(strict.outbox_drained, message="outbox drained")
    assert strict.flags("by") == ["buyer.flagged"] and strict.flags("bw") == []


async def _processed(metrics, count: int) -> bool:
    return await metrics.processed() == count


async def test_period_boundaries_hold_in_the_store(start_metrics, wait_until):
    """Facts go through BSON dates: a request at the first instant is in, one at the end is out."""
    metrics = await start_metrics(FixedClock(at(30)))
    for i, when in enumerate((at(0), at(7) - timedelta(milliseconds=1), at(7), at(0) - timedelta(milliseconds=1))):
        await metrics.publish(
            return_event(requested(f"edge-{i}", buyer_id=f"e{i}", seller_id="s-edge", created_at=when))
        )
    await wait_until(lambda: _processed(metrics, 4), message="4 events processed")
    week = await metrics.get("/v1/metrics/sellers/s-edge", **{"from": at(0).isoformat(), "to": at(7).isoformat()})
    assert week["counts"]["requests"] == 2


async def test_with_recording_on_a_review_that_lifts_a_flag_starts_the_trace_its_event_carries(
    spans: InMemorySpanExporter, start_metrics, wait_until
):
    metrics, _ = await flagged_then_reviewed(start_metrics, wait_until, "bt")
    unflagged = metrics.published[-1]
    reviews = [
        s for s in spans.get_finished_spans() if s.name == "buyer flag review" and s.attributes["buyer_id"] == "bt"
    ]
    assert unflagged.type == "buyer.unflagged" and all(s.parent is None for s in reviews)
    assert trace_id_of(unflagged.traceparent) in {format(s.context.trace_id, "032x") for s in reviews}
