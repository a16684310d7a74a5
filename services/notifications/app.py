"""The notifications service: consumes return and refund events, emails buyers and sellers (SPEC §8)."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.notifications import api
from services.notifications.handlers import NotificationHandlers
from services.notifications.jobs import Dispatcher
from services.notifications.mail import Mailer
from services.notifications.settings import Settings
from services.notifications.store import NotificationStore
from shared.bus import EventBus, Unroutable
from shared.clock import Clock, clock_from_env
from shared.events import CloudEvent
from shared.idempotency import IdempotencyStore
from shared.mongo import connect, ping
from shared.observability import add_readiness_check
from shared.outbox import OutboxRelay
from shared.service import create_service_app

log = logging.getLogger(__name__)


class Announcer:
    """The bus as the outbox relay sees it: `notification.*` nobody subscribes to counts as published.

    They are announcements; with no queue bound there is no one to tell, and a relay retrying an
    unroutable event forever would keep the document pending and the logs noisy.
    """

    def __init__(self, bus: EventBus) -> None:
        self.bus, self.service = bus, bus.service

    async def publish(self, event: CloudEvent, *, exchange: str | None = None) -> None:
        try:
            await self.bus.publish(event, exchange=exchange)
        except Unroutable:
            log.debug("no subscriber for announcement", extra={"event_id": event.id, "event_type": event.type})


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    clock = clock or clock_from_env(settings.clock_file)

    @asynccontextmanager
    async def wiring(app: FastAPI) -> AsyncIterator[None]:
        client, db = connect(settings.mongodb_url, settings.database_name)
        bus = relay = dispatcher = None
        try:
            store = NotificationStore(db)
            await store.ensure_indexes()
            idempotency = IdempotencyStore(db, clock=clock)
            await idempotency.ensure_indexes()
            bus = EventBus.from_settings(settings, inbox=db["inbox"])
            await bus.connect()
            # The relay's leases are operational time, not the (possibly moved) business clock.
            relay = OutboxRelay(Announcer(bus), [store.collection],  # type: ignore[arg-type]
                                poll_interval=settings.outbox_poll_ms / 1000)
            dispatcher = Dispatcher(store, Mailer(settings), settings, clock, relay)
            handlers = NotificationHandlers(store, dispatcher, clock)
            for event_type, handler in handlers.subscriptions():
                bus.subscribe(event_type, handler)
            await relay.start()
            await dispatcher.start()
            await bus.start()
            app.state.notifications, app.state.dispatcher, app.state.clock = store, dispatcher, clock
            app.state.idempotency, app.state.bus = idempotency, bus
            add_readiness_check(app, "mongodb", lambda: ping(db))
            add_readiness_check(app, "amqp", lambda: not bus.connection.is_closed)
            yield
        finally:
            if bus is not None:
                await bus.close()  # stop taking events before the dispatcher stops sending
            if dispatcher is not None:
                await dispatcher.stop()
            if relay is not None:
                await relay.stop()
            client.close()

    app = create_service_app(
        settings, title="Notifications", version="1.0.0",
        description="Emails buyers and sellers at every step of a return (SPEC §8).",
        routers=[api.router], lifespan=wiring)
    return app
