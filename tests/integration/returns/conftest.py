"""The returns service in-process against the real MongoDB-wire server and RabbitMQ.

Each test module gets its own database and queue prefix (dropped and deleted afterwards). A module
may set `SETTINGS = {...}` to override settings (short durations for the deadline tests).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.returns.app import create_app
from services.returns.settings import Settings
from shared.bus import EventBus
from shared.clock import FixedClock
from shared.deadletters import list_dead
from shared.events import CloudEvent
from tests.integration.module_isolation import cleanup, isolated_settings
from tests.integration.returns.factories import ReturnsApi, eventually
from tests.integration.returns.tap import EventTap

JWT_SECRET = "returns-integration-secret-" + "x" * 40
T0 = datetime(2025, 3, 8, 17, 0, tzinfo=UTC)  # a Saturday, five days after the builders' delivery


@pytest.fixture(scope="module")
def returns_settings(request: pytest.FixtureRequest, amqp_url: str, mongodb_url: str) -> Settings:
    """This module's own database, queues and exchanges, so nobody else's events meet ours."""
    values = isolated_settings(request, amqp_url, mongodb_url, JWT_SECRET) | {"max_body_bytes": 16 * 1024}
    return Settings(**(values | getattr(request.module, "SETTINGS", {})))


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture(scope="module")
async def tap(returns_settings: Settings) -> AsyncIterator[EventTap]:
    tap = EventTap(returns_settings.amqp_url, returns_settings.exchange)
    await tap.start()
    yield tap
    await tap.close()


@pytest.fixture(scope="module")
async def returns_app(returns_settings: Settings, clock: FixedClock, tap: EventTap, mongo_client) -> AsyncIterator:
    app = create_app(returns_settings, clock)
    try:
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as _:
            yield app  # its state is set by our lifespan; LifespanManager only drives it
    finally:
        await cleanup(returns_settings, mongo_client)


@pytest.fixture(scope="module")
def returns_db(returns_app, returns_settings: Settings, mongo_client):
    """The service's database through the test's own client: what a test reads there is no query
    of the service's (only the service's client is held to shared/query_shapes/)."""
    return mongo_client[returns_settings.database_name]


@pytest.fixture(scope="module")
async def http(returns_app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=returns_app), base_url="http://returns") as client:
        yield client


@pytest.fixture(scope="module")
def api(http: httpx.AsyncClient) -> ReturnsApi:
    return ReturnsApi(http, JWT_SECRET)


@pytest.fixture(scope="module")
async def upstream(returns_settings: Settings) -> AsyncIterator[EventBus]:
    """A publish-only bus: the order system, the refunds and metrics services as the returns service sees them."""
    bus = EventBus(returns_settings.amqp_url, "test-upstream", exchange=returns_settings.exchange)
    await bus.connect()
    yield bus
    await bus.close()


@pytest.fixture(scope="module")
def deliver_parked(returns_app, upstream: EventBus, returns_settings: Settings):
    """`await deliver_parked(order)`: publish `order.delivered` for that snapshot from the order
    system and wait until it is parked; answers the dead letter (fails if it never is)."""

    async def deliver(data: dict[str, Any]) -> Any:
        event = CloudEvent(
            id=str(uuid.uuid4()),
            source="/services/orders",
            type="order.delivered",
            time=T0,
            subject=data["order_id"],
            sequence=1,
            data=data,
        )
        await upstream.publish(event, exchange=returns_settings.orders_exchange)

        async def parked():
            return [letter for letter in await list_dead(returns_app.state.bus) if letter.id == event.id]

        [letter] = await eventually(parked, what="the event parked")
        return letter

    return deliver
