"""The order's outbound shipping is refunded once, with the refund of the return that brings the
order back whole, decided from what its returns brought back (docs/product.md §6)."""

from __future__ import annotations

import asyncio

import pytest

from services.refunds.domain import return_refund_id
from tests.unit.refunds.builders import make_return

pytestmark = pytest.mark.integration

SHIPPING = 599


async def outbound_of(service, *returns) -> list[int]:
    docs = [await service.refund_doc(return_refund_id(ret.return_id)) for ret in returns]
    return [doc["breakdown"]["outbound_shipping"]["amount"] for doc in docs]


@pytest.mark.parametrize("defective_first", [True, False])
async def test_split_returns_refund_the_shipping_once_with_the_return_that_completes_the_order(
    service, defective_first
):
    order = await service.delivered(lines=[("L1", 2, 1500), ("L2", 1, 4999)], shipping=SHIPPING)
    defective = make_return(order, ("L1", 2, "DEFECTIVE"))
    unwanted = make_return(order, ("L2", 1, "NO_LONGER_NEEDED"), whole_order=True)
    first, last = (defective, unwanted) if defective_first else (unwanted, defective)
    refunds = service.app.state.refunds

    await refunds.open_for_return(first)
    await refunds.open_for_return(last)
    await refunds.open_for_return(first)  # redeliveries change nothing
    await refunds.open_for_return(last)

    assert await outbound_of(service, first, last) == [0, SHIPPING]
    ledger = await service.ledger(order.order_id)
    assert ledger["refunded"] == order.total_paid()  # every line and the shipping, once


async def test_a_return_asked_as_the_last_of_the_order_carries_no_shipping_when_the_other_never_came_back(service):
    order = await service.delivered(lines=[("L1", 2, 1500), ("L2", 1, 4999)], shipping=SHIPPING)
    # The other return (L1) was requested first and closed unshipped: this one was "whole order" when
    # asked, but the order did not come back whole.
    late = make_return(order, ("L2", 1, "DEFECTIVE"), whole_order=True)

    await service.app.state.refunds.open_for_return(late)

    assert await outbound_of(service, late) == [0]
    assert (await service.ledger(order.order_id))["refunded"] == 4999


async def test_concurrent_receipts_of_an_orders_returns_refund_the_shipping_once(service, stripe_stub):
    order = await service.delivered(lines=[("L1", 1, 1500), ("L2", 1, 2500), ("L3", 1, 3500)], shipping=SHIPPING)
    returns = [make_return(order, (line_id, 1, "WRONG_ITEM_SENT")) for line_id in ("L1", "L2", "L3")]
    refunds = service.app.state.refunds

    await asyncio.gather(*(refunds.open_for_return(ret) for ret in returns * 3))

    assert sorted(await outbound_of(service, *returns)) == [0, 0, SHIPPING]
    assert (await service.ledger(order.order_id))["refunded"] == order.total_paid()
    assert len(stripe_stub.posts()) == 3


async def test_a_sellers_full_refund_of_the_completing_return_keeps_the_shipping(service):
    order = await service.delivered(lines=[("L1", 1, 1500), ("L2", 1, 2500)], shipping=SHIPPING)
    first = make_return(order, ("L1", 1, "DEFECTIVE"), refund_mode="manual")
    last = make_return(order, ("L2", 1, "DEFECTIVE"), refund_mode="manual")
    refunds = service.app.state.refunds
    await refunds.open_for_return(first)
    await refunds.open_for_return(last)
    assert await outbound_of(service, first, last) == [0, SHIPPING]
    seller = service.token("seller", "s-1")

    for ret, line_id, key in ((first, "L1", "k-1"), (last, "L2", "k-2")):
        body = {"return_id": ret.return_id, "lines": [{"line_id": line_id, "quantity": 1}]}
        response = await service.http.post("/v1/refunds", json=body, headers=seller | {"Idempotency-Key": key})
        assert response.status_code == 201, response.text

    assert await outbound_of(service, first, last) == [0, SHIPPING]
    assert (await service.ledger(order.order_id))["refunded"] == order.total_paid()


async def test_a_return_of_the_whole_order_carries_the_shipping_without_recording_anything(service):
    order = await service.delivered(lines=[("L1", 2, 1500)], shipping=SHIPPING)
    ret = make_return(order, ("L1", 2, "DEFECTIVE"), refund_mode="manual")
    await service.app.state.refunds.open_for_return(ret)
    assert await outbound_of(service, ret) == [SHIPPING]
    assert "came_back" not in await service.ledger(order.order_id)  # decided alone: one write fewer

    body = {"return_id": ret.return_id, "lines": [{"line_id": "L1", "quantity": 2}]}
    seller = service.token("seller", "s-1") | {"Idempotency-Key": "k-whole"}
    response = await service.http.post("/v1/refunds", json=body, headers=seller)
    assert response.status_code == 201, response.text
    assert response.json()["breakdown"]["outbound_shipping"]["amount"] == SHIPPING
