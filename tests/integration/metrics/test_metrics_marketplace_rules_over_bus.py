"""Metrics under the marketplaces' rules through the real broker and store, read over HTTP: the
return postage shipping insurance refunded, per currency apart from the refunded amounts (seller
report and overview); and a marketplaces file whose DE leaves denied claims out of the order defect
rate while US counts them."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import marketplaces
from shared.clock import FixedClock
from tests.unit.metrics.builders import at, order, order_event, refund, refund_event, requested, return_event
from tests.unit.metrics.dispute_builders import claim, claim_event, denied

pytestmark = pytest.mark.integration

WEEK = {"from": at(0).isoformat(), "to": at(7).isoformat()}
SELLER = "s-mp"


async def test_insured_postage_is_summed_per_currency_apart_from_the_refunds(start_metrics, wait_until):
    metrics = await start_metrics(FixedClock(at(10)))
    events = []
    for return_id, seller_id, currency, amount, insured in [
        ("r1", SELLER, "CNY", 19800, 1200),
        ("r2", SELLER, "CNY", 5000, 1500),
        ("r3", SELLER, "USD", 2999, None),
        ("r4", "s-other", "CNY", 4000, 900),
    ]:
        ret = requested(return_id, buyer_id="b1", seller_id=seller_id, created_at=at(1), currency=currency)
        issued = refund(ret, issued_at=at(3), amount=amount, insured=insured)
        events += [return_event(ret), refund_event(issued), refund_event(issued, "return.refunded")]
    for event in events:
        await metrics.publish(event)
    await wait_until(lambda: _handled(metrics, len(events)), timeout=20, message="every event handled")

    report = await metrics.get(f"/v1/metrics/sellers/{SELLER}", role="seller", sub=SELLER, **WEEK)
    assert report["insured_return_shipping"] == [{"amount": 2700, "currency": "CNY"}]
    assert report["refunded"] == [{"amount": 24800, "currency": "CNY"}, {"amount": 2999, "currency": "USD"}]
    overview = await metrics.get("/v1/metrics/overview", **WEEK)
    assert overview["insured_return_shipping"] == [{"amount": 3600, "currency": "CNY"}]
    assert overview["refunded"] == [{"amount": 28800, "currency": "CNY"}, {"amount": 2999, "currency": "USD"}]


async def test_each_claim_counts_by_its_marketplaces_rule(start_metrics, wait_until, tmp_path: Path, monkeypatch):
    path = tmp_path / "marketplaces.yaml"
    path.write_text(
        "extends: shipped\nmarketplaces:\n  DE:\n    claims:\n      odr_claims_counted: exclude_denied_or_withdrawn\n"
    )
    # The app installs its file for the whole process: put the previous registry back afterwards.
    monkeypatch.setattr(marketplaces, "_current", marketplaces.current())
    metrics = await start_metrics(FixedClock(at(70)), marketplaces_file=str(path))
    events = []
    for order_id, marketplace in [("o-us", "US"), ("o-de", "DE")]:
        placed = order(
            order_id, buyer_id="b1", seller_id=SELLER, delivered_at=at(30), skus={"S": 1}, marketplace=marketplace
        )
        filed = claim(f"c-{order_id}", order_id=order_id, seller_id=SELLER, filed_at=at(41), marketplace=marketplace)
        events += [order_event(placed), claim_event(filed), claim_event(denied(filed, at(44)))]
    for event in events:
        await metrics.publish(event)
    await wait_until(lambda: _handled(metrics, len(events)), timeout=20, message="every event handled")

    report = await metrics.get(f"/v1/metrics/sellers/{SELLER}/order-defects")
    # The denied claim on the US order counts, the one on the DE order does not.
    assert (report["a_to_z_claims"]["count"], report["order_defect_rate"]["count"], report["orders_delivered"]) == (
        1,
        1,
        2,
    )
    assert (report["claims_counted"], report["claims_counted_by_marketplace"]) == (
        "by_marketplace",
        {"DE": "exclude_denied_or_withdrawn", "US": "all"},
    )


async def _handled(metrics, count: int) -> bool:
    return await metrics.copies_handled() == count
