"""Return-shipping insurance end to end through refunds (CN, docs/product.md §13): a received return
whose authorization carries `insured_return_postage` gets a refund whose breakdown shows it as
`insured_return_shipping`, while the refund's amount, the gateway call and the order's ledger leave
it out (the insurer pays it, never the seller), in every refund mode."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.refunds.domain import return_refund_id
from shared.models import Refund
from tests.unit.refunds.builders import make_return, money

pytestmark = pytest.mark.integration

PRICE, SHIPPING, INSURED = 9900, 800, 1200  # CNY minor units (fen)


async def received_insured(service, wait_until, *, mode: str):
    """A CN order of two units; one comes back for no reason on an unpaid label the buyer paid, insured."""
    order = await service.delivered(currency="CNY", marketplace="CN", lines=[("L1", 2, PRICE)], shipping=SHIPPING)
    ret = make_return(
        order,
        ("L1", 1, "NO_LONGER_NEEDED"),
        label="unpaid",
        paid_by="buyer",
        postage=INSURED,
        insured_postage=INSURED,
        refund_mode=mode,
    )
    event = await service.send("return.received", ret)
    await wait_until(lambda: service.handled(event.id), message="return.received not handled")
    return order, ret


async def assert_paid_without_the_insured_postage(service, published, stripe_stub, wait_until, order, ret, amount):
    await wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    assert published.of_type("refund.failed") == []
    for event_type in ("refund.issued", "return.refunded"):
        [event] = published.of_type(event_type)
        refund = Refund.model_validate(event.data).model_dump(mode="json")
        breakdown = refund["breakdown"]
        assert (refund["status"], refund["amount"], breakdown["total"], breakdown["insured_return_shipping"]) == (
            "issued",
            money(amount, "CNY"),
            money(amount, "CNY"),
            money(INSURED, "CNY"),
        ), event_type
    assert [call.params["amount"] for call in stripe_stub.posts()] == [str(amount)]  # never the insured postage
    ledger = await service.ledger(order.order_id)
    # The insured postage neither raised the cap nor was taken from it.
    assert (ledger["paid"], ledger["postage_paid"], ledger["refunded"], ledger["available"]) == (
        2 * PRICE + SHIPPING,
        0,
        amount,
        2 * PRICE + SHIPPING - amount,
    )
    seller = service.token("seller", "s-1")
    shown = (await service.http.get(f"/v1/refunds/{return_refund_id(ret.return_id)}", headers=seller)).json()
    assert shown["breakdown"]["insured_return_shipping"] == money(INSURED, "CNY")
    assert shown["amount"] == money(amount, "CNY")


async def test_auto_mode_shows_the_insured_postage_apart_and_pays_the_item_only(
    service, published, stripe_stub, wait_until
):
    order, ret = await received_insured(service, wait_until, mode="auto")
    await assert_paid_without_the_insured_postage(service, published, stripe_stub, wait_until, order, ret, PRICE)


async def test_a_sellers_manual_refund_carries_the_insured_line(service, published, stripe_stub, wait_until):
    order, ret = await received_insured(service, wait_until, mode="manual")
    body = {"return_id": ret.return_id, "other_concession": money(100, "CNY")}
    response = await service.http.post(
        "/v1/refunds", json=body, headers=service.token("seller", "s-1") | {"Idempotency-Key": "k-1"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["breakdown"]["insured_return_shipping"] == money(INSURED, "CNY")
    await assert_paid_without_the_insured_postage(service, published, stripe_stub, wait_until, order, ret, PRICE + 100)


async def test_the_platforms_refund_at_the_deadline_carries_the_insured_line(
    service, published, stripe_stub, wait_until
):
    order, ret = await received_insured(service, wait_until, mode="manual")
    service.clock.set(ret.refund_due_at + timedelta(minutes=1))
    assert await service.app.state.deadline_job.run_once() == (1, 0)
    await assert_paid_without_the_insured_postage(service, published, stripe_stub, wait_until, order, ret, PRICE)
