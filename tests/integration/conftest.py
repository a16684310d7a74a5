"""Fixtures for tests against the real servers: RabbitMQ at AMQP_URL, a MongoDB-wire server at
MONGODB_URL. A missing server fails the tests (never skips them): start them with scripts/infra-up.

Every test gets its own names, so tests (and engineers) running at the same time don't meet:
`queue_prefix` for queues, `exchange` for the topic exchange, `db` for the database.

The services' MongoDB clients (made by `shared.mongo.connect`) report every filter they send; a
test fails when one has a shape shared/query_shapes/ does not list (tests/integration/shapes.py).
What only the whole run can tell (a service's client that reported nothing, a filter sent after the
last test) is decided by tests/integration/shape_check.py, in every process of a parallel run too.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import aio_pika
import pytest
from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase

import shared.mongo
from shared.bus import EventBus
from shared.events import CloudEvent
from shared.query_shapes import SERVICES as QUERY_SERVICES
from tests.integration.commands import Commands
from tests.integration.shape_check import QUERY_SHAPES
from tests.integration.shapes import ShapeRecorder, complaint

T = TypeVar("T")

# More listeners for the services' clients made meanwhile (the `service_commands` fixture).
SERVICE_LISTENERS: list[Commands] = []


def service_connecting(frame: Any) -> str | None:
    """The service whose code called `shared.mongo.connect` (directly, or through the lifespan of
    `shared.service.create_database_service_app`, whose `settings` name it); None for a test's app."""
    while frame.f_back is not None and frame.f_globals.get("__name__") == "shared.mongo":
        frame = frame.f_back
    module = str(frame.f_globals.get("__name__"))
    if module.startswith("services."):
        return module.split(".")[1]
    if module == "shared.service":
        name = getattr(frame.f_locals.get("settings"), "service_name", None)
        return name if name in QUERY_SERVICES else None
    return None


@pytest.fixture(scope="session", autouse=True)
def services_query_shapes() -> Iterator[ShapeRecorder]:
    """Every client `shared.mongo.connect` makes for a service (`services.*` calls it) reports its
    commands here."""
    make_client = shared.mongo.AsyncIOMotorClient

    def client(*args: Any, **kwargs: Any) -> AsyncIOMotorClient:
        service = service_connecting(sys._getframe(1))
        if service is not None:  # a service's client, not a test's own app
            listeners = [QUERY_SHAPES.listener(service), *SERVICE_LISTENERS]
            kwargs["event_listeners"] = [*kwargs.get("event_listeners", []), *listeners]
        return make_client(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shared.mongo, "AsyncIOMotorClient", client)
        yield QUERY_SHAPES


@pytest.fixture
def service_commands() -> Iterator[Commands]:
    """The commands of the services started while it is in use (request it before the service)."""
    commands = Commands()
    SERVICE_LISTENERS.append(commands)
    yield commands
    SERVICE_LISTENERS.remove(commands)


@pytest.fixture(autouse=True)
def only_listed_query_shapes(services_query_shapes: ShapeRecorder) -> Iterator[None]:
    """Fails the test when a service sent a filter of a shape shared/query_shapes/ does not list
    (while it ran, or before it: an app of an earlier module shutting down)."""
    yield
    found = services_query_shapes.take_unlisted()
    if found:
        pytest.fail(complaint(found), pytrace=False)


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture(scope="session")
def mongodb_url() -> str:
    return os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017")


@pytest.fixture(scope="session")
async def mongo_client(mongodb_url: str) -> AsyncIterator[AsyncIOMotorClient]:
    client: AsyncIOMotorClient = AsyncIOMotorClient(mongodb_url, tz_aware=True, serverSelectionTimeoutMS=5000)
    try:
        await client.admin.command("ping")
    except Exception as exc:  # noqa: BLE001 - any failure means no server: fail loudly, these tests need it
        pytest.fail(f"no MongoDB-wire server at {mongodb_url} (run scripts/infra-up): {exc}")
    yield client
    client.close()


@pytest.fixture
async def db(mongo_client: AsyncIOMotorClient) -> AsyncIterator[AsyncIOMotorDatabase]:
    """A fresh database for this test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield mongo_client[name]
    await mongo_client.drop_database(name)


@pytest.fixture
def queue_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def exchange(queue_prefix: str) -> str:
    """A topic exchange of this test's own (deleted by `amqp`), so its events reach no one else."""
    return f"{queue_prefix}events"


@pytest.fixture
async def amqp(amqp_url: str, exchange: str) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    """A plain connection for the test's own probing (the test's exchange is declared already);
    exclusive queues it declares die with it."""
    try:
        connection = await aio_pika.connect_robust(amqp_url, timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure means no broker: fail loudly, these tests need it
        pytest.fail(f"no RabbitMQ at {amqp_url} (run scripts/infra-up): {exc}")
    async with connection.channel() as channel:
        await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    yield connection
    async with connection.channel() as channel:
        await channel.exchange_delete(exchange)
    await connection.close()


@pytest.fixture
async def bus_factory(
    amqp_url: str, amqp: Any, exchange: str, queue_prefix: str
) -> AsyncIterator[Callable[..., Awaitable[EventBus]]]:
    """`await bus_factory("returns", inbox=db.inbox, ...)`: a connected EventBus on the test's
    exchange with queues `<queue_prefix><service>.*` and short retry delays (any EventBus argument
    overrides these); closed and its queues deleted after the test."""
    buses: list[EventBus] = []

    async def make(service: str, **kwargs: Any) -> EventBus:
        kwargs.setdefault("exchange", exchange)
        kwargs.setdefault("queue_name", f"{queue_prefix}{service}")
        kwargs.setdefault("retry_delays_ms", [50, 100])
        bus = EventBus(kwargs.pop("amqp_url", amqp_url), service, **kwargs)
        await bus.connect()
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()
    async with amqp.channel() as channel:
        for name in {n for bus in buses for n in bus.names.all}:
            await channel.queue_delete(name)


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[Any]]:
    """`await wait_until(condition, timeout=5)`: poll a sync or async condition until it returns
    something truthy (which is returned); fail with `message` on timeout."""

    async def wait(
        condition: Callable[[], Any],
        *,
        timeout: float = 5.0,
        interval: float = 0.02,
        message: str = "condition not met",
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s: {message}")
            await asyncio.sleep(interval)

    return wait


def make_event(
    event_type: str = "return.created",
    *,
    data: dict[str, Any] | None = None,
    event_id: str | None = None,
    sequence: int = 1,
    subject: str = "r-1",
) -> CloudEvent:
    """A CloudEvent with small stand-in data (the bus never looks inside `data`)."""
    return CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source="/services/test",
        type=event_type,
        time=datetime.now(UTC),
        subject=subject,
        sequence=sequence,
        data=data or {"n": 1},
    )


@pytest.fixture
def event_factory() -> Callable[..., CloudEvent]:
    return make_event
