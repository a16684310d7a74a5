"""Refunds keeps no inbox: every event it consumes has one effect however many copies arrive.

Each event (`claim.granted` and `return.offer_accepted` too) goes through the real broker as
several copies of one id (a redelivery) and copies with ids of their own (a re-publish), to two
replicas of the service consuming the same queue, so copies are handled one after another and at
the same moment. Then, from outside: one payment at
the gateway, one refund document, one count in the order's ledger, one of each event published.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from services.refunds.app import create_app
from services.refunds.domain import return_refund_id
from shared.events import CloudEvent, new_event
from shared.models import Refund, Return
from tests.integration.refunds.conftest import RefundsService, count_handled
from tests.unit.refunds.builders import make_order, make_return
from tests.unit.refunds.claim_builders import granted_claim
from tests.unit.refunds.resolution_builders import offer_accepted

pytestmark = pytest.mark.integration

POSTAGE = 750
COPIES = 4  # of one id; and as many again with ids of their own


@pytest.fixture
async def replicas(service: RefundsService) -> AsyncIterator[RefundsService]:
    """A second replica of the service on the same queue and database, counted in `handled`."""
    app = create_app(service.settings, service.clock)
    async with LifespanManager(app, startup_timeout=20, shutdown_timeout=20):
        count_handled(app.state.bus, service.handled_ids)
        yield service


async def burst(service: RefundsService, event: CloudEvent, exchange: str | None = None) -> None:
    """COPIES of the event under its id and COPIES under ids of their own, published at once; waits
    until every one of them went through a replica's handler."""
    copies = [event] * COPIES + [event.model_copy(update={"id": str(uuid.uuid4())}) for _ in range(COPIES)]
    await asyncio.gather(*(service.publisher.publish(copy, exchange=exchange) for copy in copies))

    def all_handled() -> bool:
        ids = {copy.id: copies.count(copy) for copy in copies}
        return all(service.handled_ids[event_id] >= n for event_id, n in ids.items())

    await service.wait_until(all_handled, timeout=30, message=f"not every copy of {event.type} handled")


def returns_event(service: RefundsService, event_type: str, ret: Return) -> CloudEvent:
    return new_event(
        event_type, service="returns", subject=ret.return_id, data=ret, sequence=ret.version, time=service.clock.now()
    )


async def no_inbox(service: RefundsService) -> None:
    assert "inbox" not in await service.db.list_collection_names()


async def test_order_delivered_copies_open_one_ledger(replicas: RefundsService) -> None:
    service = replicas
    order = make_order(lines=[("L1", 2, 1500)], shipping=599)
    event = new_event(
        "order.delivered", service="orders", subject=order.order_id, data=order, sequence=1, time=service.clock.now()
    )
    await burst(service, event, exchange=service.settings.orders_exchange)

    ledger = await service.ledger(order.order_id)
    assert (ledger["paid"], ledger["available"], ledger["refunded"]) == (order.total_paid(), order.total_paid(), 0)
    assert await service.db["orders"].count_documents({}) == 1
    await no_inbox(service)


async def test_return_received_copies_pay_once(replicas: RefundsService, published, stripe_stub) -> None:
    service = replicas
    order = await service.delivered(lines=[("L1", 1, 3000)], shipping=599)
    ret = make_return(
        order, ("L1", 1, "WRONG_ITEM_SENT"), whole_order=True, label="unpaid", paid_by="seller", postage=POSTAGE
    )
    await burst(service, returns_event(service, "return.received", ret))

    expected = 3000 + 599 + POSTAGE
    await service.wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    assert [call.params["amount"] for call in stripe_stub.posts()] == [str(expected)]  # one gateway call
    assert await service.db["refunds"].count_documents({"return_id": ret.return_id}) == 1
    ledger = await service.ledger(order.order_id)
    assert (ledger["postage_paid"], ledger["refunded"], ledger["reserved"], ledger["available"]) == (
        POSTAGE,
        expected,
        0,
        0,
    )
    await asyncio.sleep(0.5)  # the relay publishes each event once, however often it was woken
    assert len(published.of_type("refund.issued")) == 1 and len(published.of_type("return.refunded")) == 1
    await no_inbox(service)


async def test_returnless_authorization_copies_pay_once(replicas: RefundsService, published, stripe_stub) -> None:
    service = replicas
    order = await service.delivered(lines=[("L1", 1, 900)])
    ret = make_return(order, ("L1", 1, "NO_LONGER_NEEDED"), returnless=True, status="authorized", version=2)
    await burst(service, returns_event(service, "return.authorized", ret))

    await service.wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    assert [call.params["amount"] for call in stripe_stub.posts()] == ["900"]
    refund = Refund.model_validate(await service.refund_doc(return_refund_id(ret.return_id)))
    assert (refund.status, refund.kind, refund.version) == ("issued", "returnless", 2)
    assert (await service.ledger(order.order_id))["refunded"] == 900


async def test_claim_granted_copies_pay_once(replicas: RefundsService, published, stripe_stub) -> None:
    service = replicas
    order = await service.delivered(lines=[("L1", 1, 2000)], shipping=0)
    claim = granted_claim(order, 2500, service.clock.now())  # more than was paid: capped to 2000
    event = new_event(
        "claim.granted",
        service="disputes",
        subject=claim.claim_id,
        data=claim,
        sequence=claim.version,
        time=service.clock.now(),
    )
    await burst(service, event)

    refund_id = f"rf_{claim.claim_id}"
    await service.wait_until(lambda: published.of_type("refund.issued", refund_id), message="no refund.issued")
    assert [(call.idempotency_key, call.params["amount"]) for call in stripe_stub.posts()] == [(refund_id, "2000")]
    refund = Refund.model_validate(await service.refund_doc(refund_id))
    assert (refund.status, refund.kind, refund.claim_id, refund.amount.amount) == (
        "issued",
        "claim",
        claim.claim_id,
        2000,
    )
    assert await service.db["refunds"].count_documents({}) == 1
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"], ledger["available"]) == (2000, 0, 0)
    assert len(published.of_type("refund.issued")) == 1 and published.of_type("refund.failed") == []
    await no_inbox(service)


async def test_offer_accepted_copies_pay_once(replicas: RefundsService, published, stripe_stub) -> None:
    service = replicas
    order = await service.delivered(lines=[("L1", 1, 2000)], shipping=0)
    ret = offer_accepted(order, 2600)  # more than was paid: capped to 2000
    await burst(service, returns_event(service, "return.offer_accepted", ret))

    refund_id = "rf_" + ret.settlement.offer_id
    await service.wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    assert [(call.idempotency_key, call.params["amount"]) for call in stripe_stub.posts()] == [(refund_id, "2000")]
    refund = Refund.model_validate(await service.refund_doc(refund_id))
    assert (refund.status, refund.kind, refund.offer_id, refund.amount.amount) == (
        "issued",
        "offer",
        ret.settlement.offer_id,
        2000,
    )
    assert await service.db["refunds"].count_documents({}) == 1
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"], ledger["available"]) == (2000, 0, 0)
    assert len({e.id for e in published.of_type("refund.issued")}) == 1 and published.of_type("refund.failed") == []
    assert len({e.id for e in published.of_type("return.refunded")}) == 1
    await no_inbox(service)


async def test_manual_return_received_copies_open_one_due_refund(replicas: RefundsService, stripe_stub) -> None:
    service = replicas
    order = await service.delivered(lines=[("L1", 1, 3000)])
    ret = make_return(
        order,
        ("L1", 1, "WRONG_ITEM_SENT"),
        whole_order=True,
        label="unpaid",
        paid_by="seller",
        postage=POSTAGE,
        refund_mode="manual",
    )
    await burst(service, returns_event(service, "return.received", ret))

    refund = Refund.model_validate(await service.refund_doc(return_refund_id(ret.return_id)))
    assert (refund.status, refund.version) == ("due", 1)
    ledger = await service.ledger(order.order_id)
    assert (ledger["postage_paid"], ledger["available"], ledger["reserved"]) == (
        POSTAGE,
        order.total_paid() + POSTAGE,
        0,
    )
    assert stripe_stub.posts() == []


async def test_return_closed_copies_then_a_late_returnless_authorization_refunds_nothing(
    replicas: RefundsService, stripe_stub
) -> None:
    service = replicas
    order = await service.delivered(lines=[("L1", 1, 900)])
    authorized = make_return(order, ("L1", 1, "NO_LONGER_NEEDED"), returnless=True, status="authorized", version=2)
    closed = authorized.model_copy(update={"status": "closed", "version": 3})
    await burst(service, returns_event(service, "return.closed", closed))
    await burst(service, returns_event(service, "return.authorized", authorized))

    assert await service.refund_doc(return_refund_id(authorized.return_id)) is None
    assert stripe_stub.posts() == []
    doc: dict[str, Any] = await service.db["orders"].find_one({"_id": order.order_id})
    assert doc["closed"] == {authorized.return_id: 3} and doc["order"]["order_id"] == order.order_id


async def test_a_closed_return_before_its_order_is_kept_with_the_order(replicas: RefundsService) -> None:
    """`return.closed` may reach refunds before `order.delivered`: both end up on one document."""
    service = replicas
    order = make_order(lines=[("L1", 1, 900)])
    closed = make_return(order, ("L1", 1, "NO_LONGER_NEEDED"), status="closed", version=3)
    await burst(service, returns_event(service, "return.closed", closed))
    await service.deliver(order)
    await service.wait_until(lambda: service.ledger(order.order_id), message="order.delivered not consumed")

    doc = await service.db["orders"].find_one({"_id": order.order_id})
    assert doc["closed"] == {closed.return_id: 3} and doc["order"]["order_id"] == order.order_id
