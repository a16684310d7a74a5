"""The returns service runs without an inbox: each consumed event, delivered twice or as two copies
at once to two replicas through the real broker, has its effect once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from services.returns.app import create_app
from services.returns.handlers import SUBSCRIPTIONS
from shared.events import CloudEvent, new_event
from shared.models import BuyerFlag, Order, Refund
from tests.integration.returns.conftest import T0
from tests.integration.returns.factories import eventually, order_data, refund_data, unique

pytestmark = pytest.mark.integration

COPIES = 4  # two one after the other, then two at once


@pytest.fixture(scope="module")
async def replica(returns_app, returns_settings, clock) -> AsyncIterator:
    """A second instance consuming the same queue: copies of one event may run on both at once."""
    app = create_app(returns_settings, clock)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as _:
        yield app


class Calls:
    """Counts a method's runs on both replicas and keeps what each returned."""

    def __init__(self) -> None:
        self.results: list[Any] = []

    def wrap(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
        original = getattr(owner, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            self.results.append(result)
            return result

        monkeypatch.setattr(owner, name, counted)


def counting(monkeypatch: pytest.MonkeyPatch, apps: tuple[Any, ...], path: str) -> Calls:
    """`path` is "lifecycle.<method>" or "store.<method>" on every replica."""
    calls = Calls()
    where, name = path.split(".")
    for app in apps:
        lifecycle = app.state.lifecycle
        calls.wrap(monkeypatch, lifecycle if where == "lifecycle" else lifecycle.store, name)
    return calls


async def deliver(upstream: Any, event: CloudEvent, exchange: str | None, calls: Calls) -> None:
    """Two copies one after the other (each handled before the next), then two at once."""
    for n in (1, 2):
        await upstream.publish(event, exchange=exchange)
        await eventually(lambda n=n: len(calls.results) >= n, what=f"copy {n} of {event.type} handled")
    await asyncio.gather(upstream.publish(event, exchange=exchange), upstream.publish(event, exchange=exchange))
    await eventually(lambda: len(calls.results) >= COPIES, what=f"all {COPIES} copies of {event.type} handled")


def event_of(event_type: str, data: Any, subject: str, sequence: int = 1) -> CloudEvent:
    return new_event(event_type, service="test-upstream", subject=subject, data=data, sequence=sequence, time=T0)


async def received_return(api: Any) -> dict[str, Any]:
    who = {"buyer_id": unique("b"), "seller_id": unique("s")}
    _, ret = await api.order_with_return(("L1", 1, "DEFECTIVE"), **who)
    await api.authorize(ret["return_id"], seller=who["seller_id"])
    return await api.receive(ret["return_id"], [("L1", 1, "opened")], seller=who["seller_id"])


async def test_the_service_keeps_no_inbox(returns_app, returns_db):
    assert returns_app.state.bus.inbox is None
    assert "inbox" not in await returns_db.list_collection_names()


async def test_order_delivered_stores_the_snapshot_once(
    api, upstream, returns_app, replica, returns_db, returns_settings, monkeypatch
):
    calls = counting(monkeypatch, (returns_app, replica), "store.save_order")
    order = Order.model_validate(order_data(buyer_id=unique("b"), seller_id=unique("s")))
    event = event_of("order.delivered", order, order.order_id)
    await deliver(upstream, event, returns_settings.orders_exchange, calls)

    assert calls.results.count(True) == 1 and len(calls.results) == COPIES  # new once, then nothing to do
    doc = await returns_db.orders.find_one({"_id": order.order_id})
    assert doc["snapshot_version"] == 1


async def test_an_older_snapshot_arriving_after_a_newer_one_changes_nothing(
    upstream, returns_app, replica, returns_db, returns_settings, monkeypatch
):
    calls = counting(monkeypatch, (returns_app, replica), "store.save_order")
    first = Order.model_validate(order_data(buyer_id=unique("b"), seller_id=unique("s")))
    corrected = first.model_copy(update={"shipping_paid": first.shipping_paid.model_copy(update={"amount": 0})})
    for snapshot, sequence in ((corrected, 2), (first, 1)):  # the correction overtook the first snapshot
        await upstream.publish(
            event_of("order.delivered", snapshot, first.order_id, sequence), exchange=returns_settings.orders_exchange
        )
        await eventually(lambda n=sequence: len(calls.results) >= 3 - n, what=f"snapshot {sequence} handled")
    doc = await returns_db.orders.find_one({"_id": first.order_id})
    assert (doc["upstream_sequence"], doc["shipping_paid"]["amount"]) == (2, 0)
    assert calls.results == [True, False]


async def test_return_refunded_marks_the_return_once(api, upstream, returns_app, replica, monkeypatch):
    ret = await received_return(api)
    calls = counting(monkeypatch, (returns_app, replica), "lifecycle.refunded")
    refund = Refund.model_validate(refund_data(ret, amount=1500))
    await deliver(upstream, event_of("return.refunded", refund, ret["return_id"]), None, calls)

    after = await api.get_return(ret["return_id"])
    assert after["status"] == "refunded" and after["version"] == ret["version"] + 1
    assert [t["action"] for t in after["timeline"]].count("refund") == 1


async def test_refund_failed_is_noted_once(api, upstream, returns_app, replica, monkeypatch):
    ret = await received_return(api)
    calls = counting(monkeypatch, (returns_app, replica), "lifecycle.refund_failed")
    failed = Refund.model_validate(refund_data(ret, status="failed", failure_reason="card_declined"))
    await deliver(upstream, event_of("refund.failed", failed, failed.refund_id), None, calls)

    after = await api.get_return(ret["return_id"])
    assert len(after["refund_failures"]) == 1 and after["version"] == ret["version"] + 1


@pytest.mark.parametrize("flagged", [True, False])
async def test_a_buyer_flag_decision_is_stored_once(upstream, returns_app, replica, returns_db, monkeypatch, flagged):
    calls = counting(monkeypatch, (returns_app, replica), "store.save_buyer_flag")
    buyer = unique("b")
    flag = BuyerFlag(
        buyer_id=buyer, flagged=flagged, returns_90d=6, orders_90d=7, return_rate_90d=0.86, reason="returns_90d", at=T0
    )
    event_type = "buyer.flagged" if flagged else "buyer.unflagged"
    await deliver(upstream, event_of(event_type, flag, buyer, sequence=3), None, calls)

    assert calls.results.count(True) == 1 and len(calls.results) == COPIES
    doc = await returns_db.buyer_flags.find_one({"_id": buyer})
    assert doc["flagged"] is flagged and doc["sequence"] == 3


async def test_two_copies_handled_at_the_same_instant_by_two_replicas_have_one_effect(
    api, returns_app, replica, returns_db
):
    """The bus runs two copies one after the other only within a process; here the handlers of
    both replicas run at once, with no guard in between, for every subscribed type."""
    ret = await received_return(api)
    order = Order.model_validate(order_data(buyer_id=unique("b"), seller_id=unique("s")))
    buyer = unique("b")
    flag = BuyerFlag(
        buyer_id=buyer, flagged=True, returns_90d=6, orders_90d=7, return_rate_90d=0.9, reason="returns_90d", at=T0
    )
    failed = Refund.model_validate(refund_data(ret, status="failed", failure_reason="card_declined"))
    refund = Refund.model_validate(refund_data(ret, amount=1500))
    events = {
        "order.delivered": event_of("order.delivered", order, order.order_id),
        "buyer.flagged": event_of("buyer.flagged", flag, buyer, sequence=2),
        "refund.failed": event_of("refund.failed", failed, failed.refund_id),
        "return.refunded": event_of("return.refunded", refund, ret["return_id"]),
    }
    handlers: dict[str, list[Callable[[CloudEvent], Awaitable[None]]]] = {
        s.event_type: [s.bind(app.state.lifecycle) for app in (returns_app, replica)] for s in SUBSCRIPTIONS
    }
    for event_type, event in events.items():  # in this order: the failure is noted before the refund
        await asyncio.gather(*(handle(event) for handle in handlers[event_type] * 2))

    assert (await returns_db.orders.find_one({"_id": order.order_id}))["snapshot_version"] == 1
    assert (await returns_db.buyer_flags.find_one({"_id": buyer}))["sequence"] == 2
    after = await api.get_return(ret["return_id"])
    actions = [t["action"] for t in after["timeline"]]
    assert after["status"] == "refunded" and len(after["refund_failures"]) == 1
    assert actions.count("refund") == 1 and actions.count("refund_failed") == 1
    assert after["version"] == ret["version"] + 2
