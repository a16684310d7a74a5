"""The refunds service against the real servers: an app per test, a recording Stripe stub, and a
queue that captures what the service publishes."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.refunds.app import create_app
from services.refunds.settings import Settings
from shared.bus import EventBus
from shared.clock import FixedClock
from shared.dispute_models import Claim
from shared.events import CloudEvent, new_event
from shared.models import Order, Return
from shared.tokens import mint
from tests.integration.module_isolation import per_test_settings
from tests.integration.refunds.stripe_stub import StripeStub
from tests.queues import service_queues
from tests.unit.refunds.builders import make_order

JWT_SECRET = "refunds-integration-secret-0123456789abcdef"
# Wednesday 9 July 2025, 16:00 UTC: after the receipt date of the builders' returns.
NOW = datetime(2025, 7, 9, 16, 0, tzinfo=UTC)


@pytest.fixture
def stripe_stub() -> Iterator[StripeStub]:
    stub = StripeStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def stripe_base(stripe_stub: StripeStub) -> str:
    """Where the Stripe adapter goes; a module may override it (stripe-mock)."""
    return stripe_stub.url


@pytest.fixture
def refunds_settings(
    mongodb_url: str, amqp_url: str, db: Any, exchange: str, queue_prefix: str, stripe_base: str
) -> Settings:
    return Settings(
        **per_test_settings(mongodb_url, amqp_url, db, exchange, queue_prefix, JWT_SECRET),
        stripe_api_base=stripe_base,
        gateway_timeout_s=2.0,
        gateway_retry_delays_ms=[20, 40],
        lease_s=5.0,
    )


@dataclass
class Captured:
    """Every event the service published on the test's exchange."""

    events: list[CloudEvent] = field(default_factory=list)

    def of_type(self, event_type: str, subject: str | None = None) -> list[CloudEvent]:
        return [e for e in self.events if e.type == event_type and (subject is None or e.subject == subject)]


@pytest.fixture
async def published(amqp: aio_pika.abc.AbstractRobustConnection, exchange: str) -> AsyncIterator[Captured]:
    captured = Captured()
    channel = await amqp.channel()
    target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    for key in ("refund.*", "return.refunded"):
        await queue.bind(target, routing_key=key)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            captured.events.append(CloudEvent.from_json(message.body))

    await queue.consume(on_message)
    yield captured
    await channel.close()


@dataclass
class Harness:
    """What a test needs around the service: its settings and clock, a publisher, its database."""

    settings: Settings
    clock: FixedClock
    publisher: EventBus
    db: Any
    wait_until: Any

    def token(self, role: str, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(self.settings, role, sub, 'refunds')}"}

    async def deliver(self, order: Order) -> None:
        event = new_event(
            "order.delivered", service="orders", subject=order.order_id, data=order, sequence=1, time=self.clock.now()
        )
        await self.publisher.publish(event, exchange=self.settings.orders_exchange)

    async def delivered(self, **order_fields: Any) -> Order:
        """An order the service has consumed (`order.delivered`) and opened a ledger for."""
        order = make_order(**order_fields)
        await self.deliver(order)
        await self.wait_until(lambda: self.ledger(order.order_id), message="order.delivered not consumed")
        return order

    async def send(self, event_type: str, ret: Return, event_id: str | None = None) -> CloudEvent:
        event = new_event(
            event_type,
            service="returns",
            subject=ret.return_id,
            data=ret,
            sequence=ret.version,
            time=self.clock.now(),
            event_id=event_id,
        )
        await self.publisher.publish(event)
        return event

    async def send_claim(self, event_type: str, claim: Claim, event_id: str | None = None) -> CloudEvent:
        """A `claim.*` event as the disputes service publishes it."""
        event = new_event(
            event_type,
            service="disputes",
            subject=claim.claim_id,
            data=claim,
            sequence=claim.version,
            time=self.clock.now(),
            event_id=event_id,
        )
        await self.publisher.publish(event)
        return event

    async def refund_doc(self, refund_id: str) -> dict[str, Any] | None:
        return await self.db["refunds"].find_one({"_id": refund_id})

    async def ledger(self, order_id: str) -> dict[str, Any] | None:
        return await self.db["order_ledgers"].find_one({"_id": order_id})

    handled_ids: Counter[str] = field(default_factory=Counter)

    async def handled(self, *event_ids: str) -> bool:
        """Every one of these events went through the service's consumer (its handler returned;
        the service keeps no inbox, so the `service` fixture counts them on its bus)."""
        return all(self.handled_ids[event_id] for event_id in event_ids)


@dataclass
class RefundsService(Harness):
    app: Any = None
    http: httpx.AsyncClient | None = None


@pytest.fixture
async def harness(
    refunds_settings: Settings,
    published: Captured,
    bus_factory: Any,
    db: Any,
    amqp: aio_pika.abc.AbstractRobustConnection,
    wait_until: Any,
) -> AsyncIterator[Harness]:
    publisher = await bus_factory("test-publisher")
    yield Harness(refunds_settings, FixedClock(NOW), publisher, db, wait_until)
    async with amqp.channel() as channel:  # the service's own queues and the test's orders exchange
        for name in service_queues(refunds_settings.queue_name, refunds_settings.retry_delays_ms):
            await channel.queue_delete(name)
        await channel.exchange_delete(refunds_settings.orders_exchange)


@pytest.fixture
async def service(harness: Harness) -> AsyncIterator[RefundsService]:
    """The service app in this process (real Mongo, RabbitMQ, HTTP gateway), on a fixed clock."""
    app = create_app(harness.settings, harness.clock)
    async with LifespanManager(app, startup_timeout=20, shutdown_timeout=20):
        count_handled(app.state.bus, harness.handled_ids)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://refunds") as http:
            yield RefundsService(**vars(harness), app=app, http=http)


def count_handled(bus: EventBus, handled: Counter[str]) -> None:
    """Count each event id whose handler returned on this bus (copies of one id add up)."""
    for event_type, handler in list(bus._handlers.items()):

        async def counted(event: CloudEvent, handler: Any = handler) -> None:
            await handler(event)
            handled[event.id] += 1

        bus._handlers[event_type] = counted
