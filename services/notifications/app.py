"""The notifications service: consumes return and refund events, emails buyers and sellers (docs/product.md §8)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from services.notifications import api
from services.notifications.handlers import SUBSCRIPTIONS
from services.notifications.jobs import Dispatcher
from services.notifications.mail import Mailer
from services.notifications.settings import Settings
from services.notifications.store import NotificationStore
from shared.clock import Clock, clock_from_env
from shared.idempotency import IdempotencyStore
from shared.messaging import Messaging
from shared.mongo import connect, ping
from shared.observability import add_readiness_check
from shared.service import create_service_app


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    clock = clock or clock_from_env(settings.clock_file)

    @asynccontextmanager
    async def wiring(app: FastAPI) -> AsyncIterator[None]:
        client, db = connect(settings.mongodb_url, settings.database_name)
        try:
            store = app.state.notifications = NotificationStore(db)
            await store.ensure_indexes()
            app.state.idempotency = IdempotencyStore(db, clock=clock)
            await app.state.idempotency.ensure_indexes()
            # notification.* are announcements: with no one subscribed they count as published.
            messaging = Messaging.from_settings(
                settings, inbox=db["inbox"], outboxes=[store.collection], announcements=True
            )
            app.state.bus, app.state.clock = messaging.bus, clock
            dispatcher = app.state.dispatcher = Dispatcher(store, Mailer(settings), settings, clock, messaging.relay)
            add_readiness_check(app, "mongodb", partial(ping, db))
            async with messaging.running(SUBSCRIPTIONS, dispatcher, jobs=[dispatcher]):
                yield
        finally:
            client.close()

    return create_service_app(
        settings,
        title="Notifications",
        version="1.0.0",
        description="Emails buyers and sellers at every step of a return (docs/product.md §8).",
        routers=[api.router],
        lifespan=wiring,
    )
