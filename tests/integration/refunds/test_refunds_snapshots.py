"""Implausible order snapshots never reach the ledger (the event is parked), and a refund that would
be zero or negative is never paid: it fails, saying why."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.refunds.domain import return_refund_id
from shared.deadletters import list_dead
from shared.events import CloudEvent
from shared.models import Refund
from shared.money import Money
from tests.unit.refunds.builders import make_return, order_data

pytestmark = pytest.mark.integration


def negative_price(data: dict[str, Any]) -> None:
    data["lines"][0]["unit_price"]["amount"] = -2599


def line_in_euros(data: dict[str, Any]) -> None:
    data["lines"][1]["unit_price"]["currency"] = "EUR"


def naive_delivery(data: dict[str, Any]) -> None:
    data["delivered_at"] = data["delivered_at"].removesuffix("+00:00")


def beyond_64_bits(data: dict[str, Any]) -> None:
    data["lines"][0]["quantity"] = 2**63


@pytest.mark.parametrize("spoil", [negative_price, line_in_euros, naive_delivery, beyond_64_bits])
async def test_an_implausible_order_delivered_is_parked_and_opens_no_ledger(service, wait_until, spoil):
    data = order_data()
    spoil(data)
    event = CloudEvent(
        id=str(uuid.uuid4()),
        source="/services/orders",
        type="order.delivered",
        time=service.clock.now(),
        subject=data["order_id"],
        sequence=1,
        data=data,
    )
    await service.publisher.publish(event, exchange=service.settings.orders_exchange)

    parked = await wait_until(lambda: list_dead(service.app.state.bus), message="the event is not parked")
    assert [letter.id for letter in parked] == [event.id]
    assert "ValidationError" in parked[0].error
    assert await service.ledger(data["order_id"]) is None
    assert await service.db["orders"].find_one({"_id": data["order_id"]}) is None


async def test_a_return_with_nothing_refundable_fails_instead_of_issuing_zero(
    service, published, stripe_stub, wait_until
):
    order = await service.delivered(lines=[("L1", 2, 1500)])
    ret = make_return(order, ("L1", 2, "NO_LONGER_NEEDED"), received=[("L1", 0, "missing")])
    await service.send("return.received", ret)

    await wait_until(lambda: published.of_type("refund.failed"), message="no refund.failed")
    refund = Refund.model_validate(published.of_type("refund.failed")[0].data)
    assert (refund.status, refund.amount.amount) == ("failed", 0)
    assert "nothing to refund" in refund.failure_reason
    assert published.of_type("return.refunded") == [] and stripe_stub.calls == []
    assert (await service.ledger(order.order_id))["refunded"] == 0


async def test_a_negative_refund_is_never_paid(service, published, stripe_stub, wait_until):
    # A return computed from a snapshot that should never have been accepted (an older producer).
    order = await service.delivered(lines=[("L1", 1, 2599)], shipping=0)
    ret = make_return(order, ("L1", 1, "DEFECTIVE"))
    line = ret.lines[0].model_copy(update={"unit_price": Money(amount=-2599, currency="USD")})
    await service.send("return.received", ret.model_copy(update={"lines": [line]}))

    await wait_until(lambda: published.of_type("refund.failed"), message="no refund.failed")
    refund = Refund.model_validate(published.of_type("refund.failed")[0].data)
    assert refund.amount.amount == -2599 and "nothing to refund" in refund.failure_reason
    assert published.of_type("refund.issued") == [] and stripe_stub.calls == []
    doc = await service.refund_doc(return_refund_id(ret.return_id))
    assert doc["status"] == "failed"
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"], ledger["available"]) == (0, 0, 2599)
