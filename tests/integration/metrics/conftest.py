"""The metrics service in-process against the real RabbitMQ and MongoDB-wire servers.

`start_metrics()` runs one metrics app with a database, queues and exchanges of its own (dropped
and deleted afterwards), a publisher for its exchanges and a listener for what it publishes. The
service keeps no inbox, so the apps' handlers are wrapped to tally what each app has handled.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from motor.motor_asyncio import AsyncIOMotorDatabase

from services.metrics import app as metrics_app
from services.metrics.app import create_app
from services.metrics.flags import BuyerFlags
from services.metrics.settings import Settings
from shared.bus import EventBus
from shared.clock import Clock
from shared.events import ORDERS_EXCHANGE, CloudEvent, registered
from shared.messaging import Subscription
from shared.tokens import mint

JWT_SECRET = "metrics-integration-secret-" + "m" * 40


@dataclass
class Handled:
    """What one app's handlers returned from: event ids, and every handled copy."""

    ids: set[str] = field(default_factory=set)
    copies: int = 0


def tallied(subscriptions: list[Subscription[BuyerFlags, Any]], tallies: dict[BuyerFlags, Handled]) -> list[Any]:
    """The subscriptions with each handler tallying into its app's `Handled` (by the app's BuyerFlags)."""

    def wrap(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def handle(flags: BuyerFlags, event: CloudEvent, data: Any) -> None:
            await handler(flags, event, data)
            handled = tallies.setdefault(flags, Handled())
            handled.ids.add(event.id)
            handled.copies += 1

        return handle

    return [Subscription(s.event_type, wrap(s.handler), s.model) for s in subscriptions]


@dataclass
class RunningMetrics:
    settings: Settings
    app: FastAPI
    http: httpx.AsyncClient
    db: AsyncIOMotorDatabase
    publisher: EventBus
    tallies: dict[BuyerFlags, Handled]
    published: list[CloudEvent] = field(default_factory=list)  # buyer.* events seen on the exchange
    lifetime: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def stop(self) -> None:
        """Shut the app down (its database and queues stay until the test ends)."""
        await self.lifetime.aclose()

    def as_(self, role: str, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(JWT_SECRET, role, sub, 'metrics')}"}

    async def publish(self, event: CloudEvent) -> None:
        # The order system's events (order.delivered, order.expired) come on the orders exchange.
        exchange = self.settings.orders_exchange if registered(event.type).exchange == ORDERS_EXCHANGE else None
        await self.publisher.publish(event, exchange=exchange)

    async def get(self, path: str, role: str = "agent", sub: str = "agent-1", **params: Any) -> dict[str, Any]:
        response = await self.http.get(path, params=params, headers=self.as_(role, sub))
        assert response.status_code == 200, response.text
        return response.json()

    @property
    def handled(self) -> Handled:
        return self.tallies.setdefault(self.app.state.reports.flags, Handled())

    async def processed(self) -> int:
        """Distinct event ids this app has handled so far."""
        return len(self.handled.ids)

    async def copies_handled(self) -> int:
        """Every copy this app has handled so far, duplicates included."""
        return self.handled.copies

    async def outbox_drained(self) -> bool:
        return await self.db["buyers"].count_documents({"outbox_pending": True}) == 0

    def flags(self, buyer_id: str) -> list[str]:
        return [e.type for e in self.published if e.subject == buyer_id]


@pytest.fixture
async def start_metrics(
    amqp_url: str, mongodb_url: str, mongo_client: Any, amqp: Any, queue_prefix: str, monkeypatch: Any
) -> AsyncIterator[Callable[..., Awaitable[RunningMetrics]]]:
    stack = AsyncExitStack()
    names: list[tuple[Settings, EventBus]] = []
    tallies: dict[BuyerFlags, Handled] = {}
    monkeypatch.setattr(metrics_app, "SUBSCRIPTIONS", tallied(metrics_app.SUBSCRIPTIONS, tallies))

    async def start(
        clock: Clock, *, exchange: str | None = None, orders_exchange: str | None = None, **overrides: Any
    ) -> RunningMetrics:
        tag = f"{queue_prefix}m{len(names)}."
        settings = Settings(
            **{
                "mongodb_url": mongodb_url,
                "mongodb_db": f"test_metrics_{uuid.uuid4().hex[:10]}",
                "amqp_url": amqp_url,
                "exchange": exchange or f"{tag}events",
                "orders_exchange": orders_exchange or f"{tag}orders",
                "queue_prefix": tag,
                "retry_delays_ms": [50, 200],
                "outbox_poll_ms": 50,
                "jwt_secret": JWT_SECRET,
                "log_level": "WARNING",
                **overrides,
            }
        )
        app = create_app(settings, clock)
        lifetime = AsyncExitStack()
        stack.push_async_callback(lifetime.aclose)
        await lifetime.enter_async_context(LifespanManager(app, startup_timeout=30, shutdown_timeout=30))
        http = await lifetime.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://metrics")
        )
        publisher = EventBus(amqp_url, "test-publisher", exchange=settings.exchange)
        await publisher.connect()
        lifetime.push_async_callback(publisher.close)
        running = RunningMetrics(
            settings, app, http, mongo_client[settings.database_name], publisher, tallies, lifetime=lifetime
        )
        channel = await amqp.channel()
        lifetime.push_async_callback(channel.close)
        # Bound before anything is published: the outbox needs a queue to route buyer.* to.
        listener = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await listener.bind(
            await channel.declare_exchange(settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True),
            routing_key="buyer.*",
        )
        await channel.declare_exchange(settings.orders_exchange, aio_pika.ExchangeType.TOPIC, durable=True)

        async def heard(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            running.published.append(CloudEvent.from_json(message.body))

        await listener.consume(heard, no_ack=True)
        names.append((settings, app.state.bus))
        return running

    yield start
    await stack.aclose()
    async with amqp.channel() as channel:
        for settings, bus in names:
            await mongo_client.drop_database(settings.database_name)
            for queue in bus.names.all:
                await channel.queue_delete(queue)
            for exchange in (settings.exchange, settings.orders_exchange):
                await channel.exchange_delete(exchange)
