"""A scripted fortnight through the real broker into the real store: exact figures, and exactly the
same figures when every event arrives more than once (same id, and under a new id) and shuffled."""

from __future__ import annotations

import random
import uuid

import pytest

from shared.clock import FixedClock
from tests.integration.metrics.scenario import events
from tests.unit.metrics.builders import at

pytestmark = pytest.mark.integration

PERIOD = {"from": at(0).isoformat(), "to": at(14).isoformat()}
H = 3600.0


async def _deliver(metrics, stream, wait_until) -> None:
    for event in stream:
        await metrics.publish(event)
    await wait_until(lambda: _all_handled(metrics, len(stream)), timeout=20, message=f"{len(stream)} events handled")
    await wait_until(metrics.outbox_drained, timeout=10, message="buyer events published")


async def _all_handled(metrics, copies: int) -> bool:
    return await metrics.copies_handled() == copies


async def _reports(metrics) -> dict:
    return {
        "sA": await metrics.get("/v1/metrics/sellers/sA", **PERIOD),
        "sB": await metrics.get("/v1/metrics/sellers/sB", **PERIOD),
        "overview": await metrics.get("/v1/metrics/overview", **PERIOD),
        **{b: await metrics.get(f"/v1/metrics/buyers/{b}") for b in ("b1", "b4", "b9")},
    }


@pytest.fixture
async def in_order_and_shuffled(start_metrics, wait_until):
    script = events()
    in_order = await start_metrics(FixedClock(at(20)))
    shuffled = await start_metrics(FixedClock(at(20)))
    await _deliver(in_order, script, wait_until)
    # Every event again under its own id (a redelivery) and under a new id (a producer re-publishing
    # the same state), all shuffled: metrics keeps no inbox, the facts' versions stop both kinds.
    again = [e.model_copy(update={"id": str(uuid.uuid4())}) for e in script]
    stream = script + script + again
    random.Random(20250303).shuffle(stream)
    await _deliver(shuffled, stream, wait_until)
    assert await shuffled.processed() == len(script) + len(again)
    return in_order, shuffled


async def test_figures_are_exact_and_identical_under_duplicates_and_reordering(in_order_and_shuffled):
    in_order, shuffled = in_order_and_shuffled
    first = await _reports(in_order)
    second = await _reports(shuffled)
    for report in first:  # buyers' flag `since` is the assessment instant: both clocks stand at at(20)
        assert first[report] == second[report], report

    sa = first["sA"]
    assert sa["counts"] == {
        "requests": 9,
        "authorizations": 7,
        "platform_authorizations": 1,
        "rejections": 2,
        "closures": 0,
        "shipments": 1,
        "receipts": 2,
        "expirations": 0,
        "refunds": 2,
    }
    assert sa["returns_by_status"] == {"authorized": 5, "refunded": 2, "rejected": 2}
    assert sa["refunded"] == [{"amount": 2500, "currency": "USD"}]
    assert sa["response_time"] == {"responded": 9, "p50_seconds": 0.5 * H, "p90_seconds": 48 * H}
    assert sa["valid_requests"] == 8
    assert [sa[k]["count"] for k in ("late_response", "invalid_rejection", "negative_feedback")] == [1, 1, 2]
    # ra2 is late AND negatively reviewed: 4 problems, 3 dissatisfied returns.
    assert sa["dissatisfaction"] == {"count": 3, "of": 8, "rate": 0.375, "target": 0.1, "meets_target": False}
    assert sa["refund_timeliness"] == {"count": 1, "of": 2, "rate": 0.5}
    assert sa["auto_refunds"] == {"count": 1, "amounts": [{"amount": 1500, "currency": "USD"}]}
    assert [(r["reason_code"], r["returns"], r["units"]) for r in sa["top_reasons"]] == [
        ("NO_LONGER_NEEDED", 6, 7),
        ("DEFECTIVE", 2, 2),
        ("WRONG_ITEM_SENT", 1, 1),
    ]
    assert [(s["sku"], s["units_returned"], s["units_delivered"], s["rate"]) for s in sa["sku_return_rates"]] == [
        ("SKU-1", 1, 3, 1 / 3),
        ("SKU-2", 4, 5, 0.8),
        ("SKU-3", 5, 0, None),
    ]

    sb = first["sB"]
    assert (sb["counts"]["requests"], sb["counts"]["authorizations"], sb["counts"]["closures"]) == (4, 2, 1)
    assert sb["refunded"] == [{"amount": 800, "currency": "EUR"}]
    assert sb["response_time"] == {"responded": 3, "p50_seconds": 24 * H, "p90_seconds": 25 * H}
    assert sb["dissatisfaction"] == {"count": 0, "of": 4, "rate": 0.0, "target": 0.1, "meets_target": True}
    assert [(s["sku"], s["rate"]) for s in sb["sku_return_rates"]] == [("SKU-8", 0.5), ("SKU-9", 1.0)]

    overview = first["overview"]
    assert overview["counts"]["requests"] == 13 and overview["valid_requests"] == 12
    assert overview["refunded"] == [{"amount": 800, "currency": "EUR"}, {"amount": 2500, "currency": "USD"}]
    assert overview["dissatisfaction"]["rate"] == 0.25
    assert (overview["sellers"], overview["sellers_over_target"], overview["flagged_buyers"]) == (2, 1, 1)

    b9 = first["b9"]
    assert (b9["returns"], b9["orders"], b9["return_rate"], b9["flag"]["flagged"]) == (5, 5, 1.0, True)
    assert (first["b1"]["returns"], first["b1"]["orders"], first["b1"]["flag"]["flagged"]) == (2, 2, False)
    assert first["b4"]["flag"] == {
        "flagged": False,
        "reason": "under the abuse thresholds",
        "since": None,
        "version": 0,
    }


async def test_a_buyer_crossing_the_threshold_is_flagged_once(in_order_and_shuffled, wait_until):
    for metrics in in_order_and_shuffled:
        await wait_until(lambda metrics=metrics: metrics.flags("b9"), timeout=5, message="buyer.flagged for b9")
        assert metrics.flags("b9") == ["buyer.flagged"]
        flagged = next(e for e in metrics.published if e.subject == "b9")
        # The standing seen at the crossing: the 4th return (100 % of 4 orders) or, when two returns
        # were consumed together, the 5th.
        assert flagged.sequence == 1 and flagged.data["flagged"] is True
        assert flagged.data["returns_90d"] in (4, 5)
        assert flagged.data["orders_90d"] == flagged.data["returns_90d"] and flagged.data["return_rate_90d"] == 1.0
        assert {e.subject for e in metrics.published} == {"b9"}
