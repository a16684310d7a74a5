"""The per-order cap counts the return postage the buyer paid: a seller-fault return of a whole order
on an unpaid label is refunded items + outbound shipping + the postage, in every refund mode."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.refunds.domain import return_refund_id
from shared.models import Refund
from tests.unit.refunds.builders import make_return, money

pytestmark = pytest.mark.integration

POSTAGE = 750


async def received_on_an_unpaid_label(service, wait_until, *, shipping: int, mode: str):
    """Issue 11's order: one line of 3000, the buyer's postage of 750, the wrong item sent."""
    order = await service.delivered(lines=[("L1", 1, 3000)], shipping=shipping)
    ret = make_return(
        order,
        ("L1", 1, "WRONG_ITEM_SENT"),
        whole_order=True,
        label="unpaid",
        paid_by="seller",
        postage=POSTAGE,
        refund_mode=mode,
    )
    event = await service.send("return.received", ret)
    await wait_until(lambda: service.handled(event.id), message="return.received not handled")
    return order, ret


async def assert_paid_in_full(service, published, stripe_stub, wait_until, order, ret, expected: int):
    await wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    assert published.of_type("refund.failed") == []
    refund = Refund.model_validate(published.of_type("return.refunded", ret.return_id)[0].data)
    assert (refund.status, refund.amount.amount, refund.breakdown.return_shipping_concession.amount) == (
        "issued",
        expected,
        POSTAGE,
    )
    assert [call.params["amount"] for call in stripe_stub.posts()] == [str(expected)]
    ledger = await service.ledger(order.order_id)
    # The buyer paid the order and the postage; all of it came back, nothing more can be refunded.
    assert (ledger["paid"], ledger["postage_paid"], ledger["refunded"], ledger["reserved"], ledger["available"]) == (
        order.total_paid(),
        POSTAGE,
        expected,
        0,
        0,
    )


@pytest.mark.parametrize("shipping", [0, 599])
async def test_auto_mode_refunds_items_shipping_and_postage(service, published, stripe_stub, wait_until, shipping):
    order, ret = await received_on_an_unpaid_label(service, wait_until, shipping=shipping, mode="auto")
    await assert_paid_in_full(service, published, stripe_stub, wait_until, order, ret, 3000 + shipping + POSTAGE)


@pytest.mark.parametrize("shipping", [0, 599])
async def test_seller_refunds_with_a_return_shipping_concession(service, published, stripe_stub, wait_until, shipping):
    order, ret = await received_on_an_unpaid_label(service, wait_until, shipping=shipping, mode="manual")
    body = {"return_id": ret.return_id, "return_shipping_concession": money(POSTAGE)}
    response = await service.http.post(
        "/v1/refunds", json=body, headers=service.token("seller", "s-1") | {"Idempotency-Key": "k-1"}
    )
    assert response.status_code == 201, response.text
    await assert_paid_in_full(service, published, stripe_stub, wait_until, order, ret, 3000 + shipping + POSTAGE)


@pytest.mark.parametrize("shipping", [0, 599])
async def test_the_platform_refunds_at_the_deadline(service, published, stripe_stub, wait_until, shipping):
    order, ret = await received_on_an_unpaid_label(service, wait_until, shipping=shipping, mode="manual")
    service.clock.set(ret.refund_due_at + timedelta(minutes=1))
    assert await service.app.state.deadline_job.run_once() == (1, 0)
    await assert_paid_in_full(service, published, stripe_stub, wait_until, order, ret, 3000 + shipping + POSTAGE)


async def test_postage_is_counted_once_per_return_and_never_beyond_it(service, published, stripe_stub, wait_until):
    order, ret = await received_on_an_unpaid_label(service, wait_until, shipping=0, mode="manual")
    again = await service.send("return.received", ret)  # a redelivery with an id of its own
    await wait_until(lambda: service.handled(again.id), message="second return.received not handled")
    assert (await service.ledger(order.order_id))["available"] == 3000 + POSTAGE

    body = {"return_id": ret.return_id, "return_shipping_concession": money(POSTAGE + 1)}
    seller = service.token("seller", "s-1")
    too_much = await service.http.post("/v1/refunds", json=body, headers=seller | {"Idempotency-Key": "k-1"})
    assert too_much.status_code == 422 and too_much.json()["available"] == money(3000 + POSTAGE)
    assert stripe_stub.calls == []
    due = (await service.http.get(f"/v1/refunds/{return_refund_id(ret.return_id)}", headers=seller)).json()
    assert (due["status"], due["amount"]["amount"]) == ("due", 3000 + POSTAGE)
