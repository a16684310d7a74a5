"""Notifications against the real broker, the real MongoDB-wire server and a real SMTP server.

`mailbox`: an aiosmtpd server in this process on a free port, which records what it accepts and
can refuse (451) the first N attempts or reject (550) some addresses. `service`: the notifications
app, started on the test's own database, exchange and queues, with short delays, talking to it.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import aio_pika
import httpx
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager

from services.notifications.app import create_app
from services.notifications.samples import AT
from services.notifications.settings import Settings
from shared.bus import EventBus
from shared.events import CloudEvent, new_event
from shared.tokens import mint
from tests.ports import free_port
from tests.queues import service_queues


def fresh_event(event_type: str, data: Any, *, service: str, subject: str) -> CloudEvent:
    """`data`'s event at the samples' time, its version the sequence, with an id no inbox has seen."""
    return new_event(
        event_type,
        service=service,
        subject=subject,
        data=data,
        sequence=data.version,
        time=AT,
        event_id=str(uuid.uuid4()),
    )


class Mailbox:
    """aiosmtpd handler. Runs on the controller's thread, hence the lock."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse_next = 0  # attempts to answer with 451 before accepting
        self.reject: set[str] = set()  # addresses answered with 550, always
        self.attempts = 0
        self._lock = threading.Lock()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's name
        self,
        server: Any,
        session: Any,
        envelope: Any,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self._lock:
            self.attempts += 1
            if address in self.reject:
                return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
            if self.refuse_next > 0:
                self.refuse_next -= 1
                return "451 4.3.2 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)  # what the default policy builds
        with self._lock:
            self.messages.append(message)
        return "250 2.0.0 Ok: queued"

    def received(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox = field(default_factory=Mailbox)
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Any:
    """A running SMTP server; `smtp.stop()` / `smtp.start()` take it down and up on the same port."""
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mailbox(smtp: SmtpServer) -> Mailbox:
    return smtp.mailbox


class Announcements:
    """notification.* events the service published, heard on the test's exchange."""

    def __init__(self) -> None:
        self.events: list[CloudEvent] = []

    def of(self, event_type: str) -> list[CloudEvent]:
        return [event for event in self.events if event.type == event_type]


@pytest.fixture
async def announcements(amqp: Any, exchange: str) -> AsyncIterator[Announcements]:
    # Bound before the service starts, so its outbox relay always has somewhere to publish.
    heard = Announcements()
    channel = await amqp.channel()
    topic = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
    await queue.bind(topic, routing_key="notification.*")

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        heard.events.append(CloudEvent.from_json(message.body))

    await queue.consume(on_message, no_ack=True)
    yield heard
    await channel.close()


@pytest.fixture
def settings(mongodb_url: str, amqp_url: str, db: Any, exchange: str, queue_prefix: str, smtp: SmtpServer) -> Settings:
    return Settings(
        mongodb_url=mongodb_url,
        mongodb_db=db.name,
        amqp_url=amqp_url,
        exchange=exchange,
        queue_prefix=queue_prefix,
        retry_delays_ms=[50, 100],
        outbox_poll_ms=50,
        smtp_port=smtp.port,
        smtp_timeout_s=5,
        send_retry_delays_ms=[100, 200, 300, 400],
        dispatch_poll_ms=30,
        jwt_secret="notifications-test-secret-of-32-bytes-or-more",
        log_level="WARNING",
    )


@dataclass
class Service:
    settings: Settings
    app: Any
    client: httpx.AsyncClient
    publisher: EventBus
    db: Any

    async def publish(self, *events: CloudEvent) -> None:
        await asyncio.gather(*(self.publisher.publish(event) for event in events))

    def token(self, role: str, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(self.settings, role, sub, 'notifications')}"}

    async def notifications(self, **query: Any) -> list[dict[str, Any]]:
        return [doc async for doc in self.db.notifications.find(query)]

    handled: Counter[str] = field(default_factory=Counter)

    async def processed(self, *event_ids: str, times: int = 1) -> bool:
        """Has the consumer handled each of these events, at least `times` times (its log says so)?"""
        return all(self.handled[event_id] >= times for event_id in event_ids)


class Handled(logging.Handler):
    """Counts the events the consumer's handler finished with: it logs each one, by event id."""

    def __init__(self, counts: Counter[str]) -> None:
        super().__init__(logging.INFO)
        self.counts = counts

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() in ("notifications recorded", "stale reminder dropped"):
            self.counts[vars(record)["event_id"]] += 1


@asynccontextmanager
async def running(
    settings: Settings, db: Any, amqp: Any, bus_factory: Any, *, delete_queues: bool = True
) -> AsyncIterator[Service]:
    """The app, started; `delete_queues=False` for a second replica (the first one's exit deletes them)."""
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=20, shutdown_timeout=20):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifications") as client:
            publisher = await bus_factory("publisher")
            started = Service(settings, app, client, publisher, db)
            handlers_log = logging.getLogger("services.notifications.handlers")
            counter, level = Handled(started.handled), handlers_log.level
            handlers_log.addHandler(counter)
            handlers_log.setLevel(logging.INFO)
            try:
                yield started
            finally:
                handlers_log.removeHandler(counter)
                handlers_log.setLevel(level)
        names = service_queues(settings.queue_name, settings.retry_delays_ms) if delete_queues else []
    async with amqp.channel() as channel:
        for name in names:
            await channel.queue_delete(name)


@pytest.fixture
async def service(
    settings: Settings, db: Any, amqp: Any, announcements: Announcements, bus_factory: Any
) -> AsyncIterator[Service]:
    """The service, with `announcements` listening for what it publishes."""
    async with running(settings, db, amqp, bus_factory) as started:
        yield started


@pytest.fixture
async def unheard_service(settings: Settings, db: Any, amqp: Any, bus_factory: Any) -> AsyncIterator[Service]:
    """The service with no one subscribed to `notification.*`."""
    async with running(settings, db, amqp, bus_factory) as started:
        yield started
