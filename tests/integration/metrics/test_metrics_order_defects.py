"""The order defect rate and seller rating through the real broker and store: deliveries, then
feedback, claims and chargebacks as the disputes service publishes them, read back from
`GET /v1/metrics/sellers/{id}/order-defects` and the overview. Copies change nothing; events that
come out of order (a removal before the feedback, a claim before its order's delivery) count as
they would in order."""

from __future__ import annotations

from typing import Any

import pytest

from shared.clock import FixedClock
from shared.events import CloudEvent
from tests.unit.metrics.builders import at, order, order_event
from tests.unit.metrics.dispute_builders import (
    chargeback,
    chargeback_closed,
    chargeback_event,
    claim,
    claim_event,
    denied,
    expired_event,
    expired_order,
    feedback_event,
    granted,
    removed,
    seller_feedback,
)

pytestmark = pytest.mark.integration

NOW = at(70)  # the window: [at(10), at(70))
SELLER = "s-odr"
FACTS = ("claim_facts", "chargeback_facts", "feedback_facts", "expired_order_facts", "delivery_facts")


def delivered(order_id: str, day: float, seller_id: str = SELLER) -> CloudEvent:
    return order_event(order(order_id, buyer_id="b1", seller_id=seller_id, delivered_at=at(day), skus={"SKU-1": 1}))


def first_sixty_days() -> list[CloudEvent]:
    """Six orders of the seller in the window (o0 was delivered before it), then what buyers did."""
    deliveries = [delivered(f"o{i}", 19 + i) for i in range(1, 7)]
    deliveries += [delivered("o0", 5), delivered("o9", 20, seller_id="s-other")]
    return [
        *deliveries,
        feedback_event(seller_feedback("f1", order_id="o1", seller_id=SELLER, rating=1, left_at=at(40))),
        feedback_event(seller_feedback("f5", order_id="o5", seller_id=SELLER, rating=5, left_at=at(40))),
        claim_event(claim("c2", order_id="o2", seller_id=SELLER, filed_at=at(41))),
        claim_event(claim("c0", order_id="o0", seller_id=SELLER, filed_at=at(41))),  # before the window
        claim_event(claim("c9", order_id="o9", seller_id="s-other", filed_at=at(41))),
        chargeback_event(chargeback("cb3", order_id="o3", seller_id=SELLER, opened_at=at(42))),
        chargeback_event(chargeback("cb4", order_id="o4", seller_id=SELLER, opened_at=at(42), fraud=True)),
        expired_event(expired_order("x1", seller_id=SELLER, expired_at=at(30))),
    ]


async def _handled(metrics, count: int) -> bool:
    return await metrics.copies_handled() == count


async def _facts(metrics) -> dict[str, Any]:
    return {c: await metrics.db[c].find({}).sort("_id").to_list(None) for c in FACTS}


def _figures(report: dict[str, Any]) -> tuple:
    return tuple(
        (report[k]["count"], report[k]["of"])
        for k in ("negative_feedback", "a_to_z_claims", "service_chargebacks", "order_defect_rate")
    )


async def test_a_sellers_order_defects_and_rating_from_the_broker(start_metrics, wait_until):
    metrics = await start_metrics(FixedClock(NOW))
    script = first_sixty_days()
    for event in script:
        await metrics.publish(event)
    await wait_until(lambda: _handled(metrics, len(script)), timeout=20, message="every event handled")

    report = await metrics.get(f"/v1/metrics/sellers/{SELLER}/order-defects", role="seller", sub=SELLER)
    assert report["window"] == {"from": "2025-03-13T09:00:00Z", "to": "2025-05-12T09:00:00Z"}
    assert report["window_days"] == 60 and report["orders_delivered"] == 6
    # o1 negative feedback, o2 a claim, o3 a service chargeback; o4's fraud chargeback is no defect.
    assert _figures(report) == ((1, 6), (1, 6), (1, 6), (3, 6))
    assert report["order_defect_rate"]["rate"] == pytest.approx(0.5)
    assert report["a_to_z_claims"]["rate"] == pytest.approx(1 / 6)
    assert (report["target"], report["meets_target"], report["claims_counted"]) == (0.01, False, "all")
    assert report["fraud_chargebacks"] == 1
    # +100 for o4, o5, o6; -500 for the claim, the feedback, the service chargeback and the expired order x1.
    assert report["rating"] == {
        "score": 3 * 100 - 4 * 500,
        "perfect_orders": 3,
        "claims": 1,
        "negative_feedback": 1,
        "service_chargebacks": 1,
        "orders_expired": 1,
    }
    overview = await metrics.get("/v1/metrics/overview", **{"from": at(0).isoformat(), "to": NOW.isoformat()})
    totals = overview["disputes"]
    assert totals["claims"]["filed"] == 3 and totals["claims"]["granted"] == 0
    assert totals["service_chargebacks"] == {"opened": 1, "won": 0, "lost": 0}
    assert totals["fraud_chargebacks"] == {"opened": 1, "won": 0, "lost": 0}
    assert (totals["negative_feedback"], totals["orders_expired"]) == (1, 1)

    # Every event delivered again (same ids, as the broker redelivers): nothing changes.
    stored = await _facts(metrics)
    for event in script:
        await metrics.publish(event)
    await wait_until(lambda: _handled(metrics, 2 * len(script)), timeout=20, message="every copy handled")
    assert await _facts(metrics) == stored
    assert await metrics.get(f"/v1/metrics/sellers/{SELLER}/order-defects") == report

    # An agent removes the negative feedback: o1 is a perfect order again.
    f1 = seller_feedback("f1", order_id="o1", seller_id=SELLER, rating=1, left_at=at(40))
    await metrics.publish(feedback_event(removed(f1, at(50))))
    await wait_until(lambda: _handled(metrics, 2 * len(script) + 1), timeout=10, message="removal handled")
    after = await metrics.get(f"/v1/metrics/sellers/{SELLER}/order-defects")
    assert _figures(after) == ((0, 6), (1, 6), (1, 6), (2, 6))
    assert (after["rating"]["perfect_orders"], after["rating"]["score"]) == (4, 4 * 100 - 3 * 500)


async def test_events_out_of_order_count_as_in_order(start_metrics, wait_until):
    """Newest first: the removal before its feedback, the decision before its claim, every defect
    before its order's delivery; under the setting that leaves out claims denied or withdrawn."""
    metrics = await start_metrics(FixedClock(NOW), odr_claims_counted="exclude_denied_or_withdrawn")
    f1 = seller_feedback("f1", order_id="o1", seller_id=SELLER, rating=1, left_at=at(40))
    c2 = claim("c2", order_id="o2", seller_id=SELLER, filed_at=at(41))
    c3 = claim("c3", order_id="o3", seller_id=SELLER, filed_at=at(41))
    cb5 = chargeback("cb5", order_id="o5", seller_id=SELLER, opened_at=at(42))
    in_order = [
        *(delivered(f"o{i}", 19 + i) for i in range(1, 6)),
        feedback_event(f1),
        feedback_event(removed(f1, at(45))),
        claim_event(c2),
        claim_event(denied(c2, at(44))),
        claim_event(c3),
        claim_event(granted(c3, at(44), automatic=True)),
        feedback_event(seller_feedback("f4", order_id="o4", seller_id=SELLER, rating=2, left_at=at(40))),
        chargeback_event(cb5),
        chargeback_event(chargeback_closed(cb5, at(50), won=False)),
    ]
    for event in reversed(in_order):
        await metrics.publish(event)
    await wait_until(lambda: _handled(metrics, len(in_order)), timeout=20, message="every event handled")

    report = await metrics.get(f"/v1/metrics/sellers/{SELLER}/order-defects", role="agent", sub="agent-1")
    assert report["claims_counted"] == "exclude_denied_or_withdrawn"
    # o1's feedback was removed and o2's claim denied: o3 (claim), o4 (feedback), o5 (chargeback) remain.
    assert _figures(report) == ((1, 5), (1, 5), (1, 5), (3, 5))
    assert (report["rating"]["perfect_orders"], report["rating"]["score"]) == (2, 2 * 100 - 3 * 500)
    facts = await _facts(metrics)
    assert {d["_id"]: d["status"] for d in facts["claim_facts"]} == {"c2": "denied", "c3": "paying"}
    assert [(d["_id"], d["removed"]) for d in facts["feedback_facts"]] == [("f1", True), ("f4", False)]
    assert [d["status"] for d in facts["chargeback_facts"]] == ["lost"]
    overview = await metrics.get("/v1/metrics/overview", **{"from": at(0).isoformat(), "to": NOW.isoformat()})
    claims = overview["disputes"]["claims"]
    assert (claims["filed"], claims["granted"], claims["granted_automatically"], claims["denied"]) == (2, 1, 1, 1)
    assert overview["disputes"]["service_chargebacks"] == {"opened": 1, "won": 0, "lost": 1}
    assert (overview["disputes"]["negative_feedback"], overview["disputes"]["feedback_removed"]) == (1, 1)
