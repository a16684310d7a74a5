"""shared.messaging against a real RabbitMQ and MongoDB-wire server: subscriptions get validated
data on the deployment's exchanges, invalid data is parked at once, the relay publishes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest

from shared.deadletters import list_dead
from shared.events import CloudEvent, new_event
from shared.messaging import Messaging, Subscription
from shared.models import BuyerFlag, Order
from shared.outbox_writes import outbox_fields
from shared.queues import Unroutable
from shared.settings import CommonSettings
from tests.integration.test_bus import drain, probe
from tools.contract_examples import example_data

pytestmark = pytest.mark.integration


def flag(buyer_id: str, flagged: bool = True) -> CloudEvent:
    data = BuyerFlag(
        buyer_id=buyer_id,
        flagged=flagged,
        returns_90d=5,
        orders_90d=6,
        return_rate_90d=0.8,
        reason="returns_90d >= 5",
        at=datetime(2026, 3, 2, tzinfo=UTC),
    )
    return new_event(
        "buyer.flagged" if flagged else "buyer.unflagged",
        service="metrics",
        subject=buyer_id,
        data=data,
        sequence=1,
        time=data.at,
    )


class Heard:
    def __init__(self) -> None:
        self.got: list[tuple[str, CloudEvent, Any]] = []

    async def __call__(self, context: str, event: CloudEvent, data: Any) -> None:
        self.got.append((context, event, data))


async def test_subscriptions_relay_and_parking(amqp_url, amqp, exchange, queue_prefix, db, wait_until):
    settings = CommonSettings(
        service_name="returns",
        amqp_url=amqp_url,
        exchange=exchange,
        orders_exchange=f"{queue_prefix}orders",
        queue_prefix=queue_prefix,
        retry_delays_ms=[60_000],
        outbox_poll_ms=50,
    )  # a retry would take a minute
    messaging = Messaging.from_settings(settings, inbox=db.inbox, outboxes=[db.buyers])
    heard = Heard()
    subscriptions = [Subscription("buyer.flagged", heard), Subscription("order.delivered", heard)]
    channel = await amqp.channel()
    orders = await channel.declare_exchange(settings.orders_exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    try:
        async with messaging.running(subscriptions, "ctx"):
            bus = messaging.bus
            flagged = flag("b-1")
            await bus.publish(flagged)
            order, _ = example_data("order.delivered")
            delivered = new_event(
                "order.delivered",
                service="orders",
                subject="ord-1001",
                data=order,
                sequence=1,
                time=datetime(2026, 3, 2, tzinfo=UTC),
            )
            await bus.publish(delivered, exchange=settings.orders_exchange)
            await wait_until(lambda: len(heard.got) == 2, message="both subscriptions heard")
            by_type = {event.type: (context, event, data) for context, event, data in heard.got}
            assert by_type["buyer.flagged"][:2] == ("ctx", flagged)
            assert isinstance(by_type["buyer.flagged"][2], BuyerFlag) and by_type["buyer.flagged"][2].buyer_id == "b-1"
            assert isinstance(by_type["order.delivered"][2], Order)

            invalid = flag("b-2").model_copy(update={"data": {**flag("b-2").data, "flagged": "perhaps"}})
            await bus.publish(invalid)
            [dead] = await wait_until(lambda: list_dead(bus), message="parked without waiting for a retry")
            assert (dead.id, dead.attempts) == (invalid.id, 1)
            assert dead.error.startswith("invalid event: ValidationError") and len(heard.got) == 2

            listener = await probe(amqp, exchange, "buyer.unflagged")
            unflagged = flag("b-3", flagged=False)
            await db.buyers.insert_one({"_id": "b-3", **outbox_fields([unflagged])})
            messaging.relay.wake()
            [message] = await wait_until(lambda: drain(listener), message="the relay published the outbox")
            assert CloudEvent.from_json(message.body) == unflagged
        assert not bus.is_connected()
    finally:
        async with amqp.channel() as cleanup:
            for name in messaging.bus.names.all:
                await cleanup.queue_delete(name)
            await cleanup.exchange_delete(orders.name)


async def test_a_retired_type_is_unbound_from_the_queue_an_older_version_declared(
    amqp_url, amqp, exchange, queue_prefix, db, wait_until
):
    settings = CommonSettings(
        service_name="disputes", amqp_url=amqp_url, exchange=exchange, queue_prefix=queue_prefix, outbox_poll_ms=50
    )
    heard = Heard()
    older = Messaging.from_settings(settings, inbox=None, outboxes=[])
    try:
        async with older.running([Subscription("buyer.flagged", heard), Subscription("buyer.unflagged", heard)], "v1"):
            pass  # declares the queue with both bindings, as the older version did
        newer = Messaging.from_settings(settings, inbox=None, outboxes=[])
        async with newer.running([Subscription("buyer.unflagged", heard)], "v2", retired=["buyer.flagged"]):
            with pytest.raises(Unroutable):  # no queue is bound to it any more
                await newer.bus.publish(flag("b-1"))
            unflagged = flag("b-2", flagged=False)
            await newer.bus.publish(unflagged)
            await wait_until(lambda: heard.got, message="the type still subscribed is delivered")
            assert [(context, event.id) for context, event, _ in heard.got] == [("v2", unflagged.id)]
            assert await list_dead(newer.bus) == []
    finally:
        async with amqp.channel() as cleanup:
            for name in older.bus.names.all:
                await cleanup.queue_delete(name)


def test_a_type_cannot_be_subscribed_and_retired_at_once() -> None:
    messaging = Messaging.from_settings(CommonSettings(service_name="disputes"), inbox=None, outboxes=[])
    messaging.subscribe([Subscription("buyer.flagged", Heard())], "ctx")
    with pytest.raises(ValueError, match="cannot be retired"):
        messaging.retire(["buyer.flagged"])


async def test_the_relay_publishes_as_many_documents_at_once_as_the_settings_say(db):
    settings = CommonSettings(service_name="returns", outbox_concurrency=7)
    assert Messaging.from_settings(settings, inbox=None, outboxes=[db.buyers]).relay.concurrency == 7
    assert CommonSettings(service_name="returns").outbox_concurrency == 64


async def test_the_relays_claim_lasts_as_long_as_the_settings_say(db):
    settings = CommonSettings(service_name="returns", outbox_claim_ms=1500)
    assert Messaging.from_settings(settings, inbox=None, outboxes=[db.buyers]).relay.claim_for.total_seconds() == 1.5
    # As long as a lease by `_id`: shorter than a stall, two replicas publish the same events.
    assert CommonSettings(service_name="returns").outbox_claim_ms == 30000
