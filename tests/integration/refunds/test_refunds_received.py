"""A received return is refunded once, with the right breakdown, and both events are published."""

from __future__ import annotations

import asyncio

import pytest

from services.refunds.domain import return_refund_id
from shared.models import Refund
from tests.unit.refunds.builders import make_order, make_return

pytestmark = pytest.mark.integration


async def test_received_return_is_refunded_once_with_the_right_breakdown(service, published, stripe_stub, wait_until):
    order = await service.delivered(lines=[("L1", 2, 1500), ("L2", 1, 4999)], shipping=599)
    ret = make_return(
        order,
        ("L1", 2, "NO_LONGER_NEEDED"),
        restocking=10,
        label="unpaid",
        paid_by="seller",
        postage=899,
        received=[("L1", 1, "sellable"), ("L1", 1, "opened")],
    )
    await service.send("return.received", ret)
    refund_id = return_refund_id(ret.return_id)

    await wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    [issued] = published.of_type("refund.issued", refund_id)
    [returned] = published.of_type("return.refunded", ret.return_id)
    refund = Refund.model_validate(issued.data)
    b = refund.breakdown
    assert (
        b.items.amount,
        b.restocking_fee.amount,
        b.outbound_shipping.amount,
        b.return_shipping_concession.amount,
        b.other_concession.amount,
    ) == (3000, 150, 0, 899, 0)
    assert refund.amount.amount == b.total.amount == 3749
    assert (refund.status, refund.kind, refund.return_id, refund.automatic, refund.actor.role) == (
        "issued",
        "return",
        ret.return_id,
        False,
        "platform",
    )
    assert issued.sequence == refund.version
    assert returned.sequence == ret.version + 1 == refund.return_version + 1  # the return's next version
    assert Refund.model_validate(returned.data) == refund

    [call] = stripe_stub.posts()
    assert call.idempotency_key == refund_id
    assert (call.params["amount"], call.params["payment_intent"], call.params["metadata[return_id]"]) == (
        "3749",
        "pi_test_123",
        ret.return_id,
    )
    assert refund.gateway == "stripe" and refund.gateway_reference == "re_stub_1"
    ledger = await service.ledger(order.order_id)
    # The buyer paid the order and, on the unpaid label, 899 of postage: both count toward the cap.
    assert (ledger["paid"], ledger["postage_paid"], ledger["refunded"], ledger["reserved"], ledger["available"]) == (
        order.total_paid(),
        899,
        3749,
        0,
        order.total_paid() + 899 - 3749,
    )

    seller = await service.http.get(f"/v1/refunds/{refund_id}", headers=service.token("seller", "s-1"))
    assert seller.status_code == 200 and seller.json()["amount"] == {"amount": 3749, "currency": "USD"}
    buyer = await service.http.get(f"/v1/refunds/{refund_id}", headers=service.token("buyer", "b-1"))
    assert buyer.status_code == 200
    stranger = await service.http.get(f"/v1/refunds/{refund_id}", headers=service.token("seller", "s-2"))
    assert stranger.status_code == 404
    assert stranger.headers["content-type"].startswith("application/problem+json")
    listed = await service.http.get(
        "/v1/refunds", params={"return_id": ret.return_id, "status": "issued"}, headers=service.token("agent", "a-1")
    )
    assert [item["refund_id"] for item in listed.json()["items"]] == [refund_id]
    theirs = await service.http.get(
        "/v1/refunds", params={"order_id": order.order_id}, headers=service.token("seller", "s-2")
    )
    assert theirs.json()["items"] == []


async def test_the_fee_percent_the_return_carries_is_applied_with_no_cap_of_its_own(
    service, published, stripe_stub, wait_until
):
    # The returns service decided 80 % for L1 and none for L2 (its rules, its cap): refunds applies them.
    order = await service.delivered(lines=[("L1", 2, 1500), ("L2", 1, 4999)], shipping=599)
    ret = make_return(
        order,
        ("L1", 1, "NO_LONGER_NEEDED"),
        ("L2", 1, "NO_LONGER_NEEDED"),
        restocking=20,
        received=[("L1", 1, "opened", 80), ("L2", 1, "opened", 0)],
    )
    await service.send("return.received", ret)
    await wait_until(lambda: published.of_type("refund.issued"), message="no refund.issued")
    refund = Refund.model_validate(published.of_type("refund.issued")[0].data)
    assert [(line.line_id, line.restocking_fee.amount) for line in refund.breakdown.lines] == [("L1", 1200), ("L2", 0)]
    assert refund.amount.amount == 1500 - 1200 + 4999


async def test_the_same_return_received_twice_and_concurrently_pays_once(service, published, stripe_stub, wait_until):
    order = await service.delivered()
    ret = make_return(order, ("L1", 1, "DEFECTIVE"))
    first = await service.send("return.received", ret)
    # The same event again (a redelivery) and two more copies with ids of their own, all at once.
    _, second, third = await asyncio.gather(
        service.send("return.received", ret, event_id=first.id),
        service.send("return.received", ret),
        service.send("return.received", ret),
    )

    await wait_until(lambda: service.handled(first.id, second.id, third.id), message="events not all handled")
    await wait_until(lambda: published.of_type("return.refunded"), message="no return.refunded")
    assert len(stripe_stub.posts()) == 1 and len(stripe_stub.refunds) == 1
    assert len({e.id for e in published.of_type("refund.issued")}) == 1
    assert len({e.id for e in published.of_type("return.refunded")}) == 1
    assert (await service.ledger(order.order_id))["refunded"] == 1500


async def test_concurrent_handlers_of_one_return_call_the_gateway_once(service, stripe_stub, wait_until):
    order = await service.delivered()
    ret = make_return(order, ("L1", 3, "WRONG_ITEM_SENT"), ("L2", 1, "WRONG_ITEM_SENT"), whole_order=True)
    refunds = service.app.state.refunds

    await asyncio.gather(*(refunds.open_for_return(ret) for _ in range(8)))

    doc = await service.refund_doc(return_refund_id(ret.return_id))
    assert doc["status"] == "issued"
    assert doc["amount"]["amount"] == order.total_paid()  # seller at fault, whole order: shipping too
    assert len(stripe_stub.posts()) == 1


async def test_returnless_authorization_is_refunded_at_once(service, published, stripe_stub, wait_until):
    order = await service.delivered(lines=[("L1", 1, 900)])
    ret = make_return(order, ("L1", 1, "NO_LONGER_NEEDED"), returnless=True, status="authorized", version=2)
    plain = make_return(order, ("L1", 1, "NO_LONGER_NEEDED"), status="authorized", version=2)
    await service.send("return.authorized", plain)  # an ordinary authorization refunds nothing
    await service.send("return.authorized", ret)

    await wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no refund")
    refund = Refund.model_validate(published.of_type("refund.issued")[0].data)
    assert (refund.kind, refund.amount.amount, refund.received_at) == ("returnless", 900, None)
    assert await service.refund_doc(return_refund_id(plain.return_id)) is None
    assert len(stripe_stub.posts()) == 1


async def test_a_return_closed_before_its_returnless_authorization_arrives_is_not_refunded(service, wait_until):
    order = await service.delivered(lines=[("L1", 1, 900)])
    authorized = make_return(order, ("L1", 1, "NO_LONGER_NEEDED"), returnless=True, status="authorized", version=2)
    closed = make_return(
        order,
        ("L1", 1, "NO_LONGER_NEEDED"),
        return_id=authorized.return_id,
        returnless=True,
        status="closed",
        version=3,
    )
    first = await service.send("return.closed", closed)
    await wait_until(lambda: service.handled(first.id), message="return.closed not handled")
    late = await service.send("return.authorized", authorized)
    await wait_until(lambda: service.handled(late.id), message="late authorization not handled")
    assert await service.refund_doc(return_refund_id(authorized.return_id)) is None


async def test_ledger_gateway_records_one_entry_per_key(service, published, stripe_stub, wait_until):
    order = await service.delivered(provider="ledger", reference="mkt-settlement-42")
    ret = make_return(order, ("L2", 1, "DEFECTIVE"))
    await service.send("return.received", ret)
    await wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no refund")

    refund = Refund.model_validate(published.of_type("refund.issued")[0].data)
    entries = [doc async for doc in service.db["ledger_entries"].find({})]
    assert [(e["_id"], e["amount"], e["reference"]) for e in entries] == [
        (refund.refund_id, 4999, refund.gateway_reference)
    ]
    assert refund.gateway == "ledger" and stripe_stub.calls == []


async def test_a_return_received_before_its_order_is_refunded_once_the_order_arrives(service, published, wait_until):
    order = make_order()
    ret = make_return(order, ("L1", 1, "DEFECTIVE"))
    await service.send("return.received", ret)  # fails (no order yet) and is retried by the bus
    await service.deliver(order)
    await wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no refund")
