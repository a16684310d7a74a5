"""The returns service app: its lifespan wires store, lifecycle, messaging and the deadline job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from services.returns import api
from services.returns.commands import Lifecycle
from services.returns.handlers import SUBSCRIPTIONS
from services.returns.jobs import DeadlineJob
from services.returns.policy import MarketplaceRules
from services.returns.settings import ReturnsSettings
from services.returns.store import ReturnsStore
from shared import calendar
from shared.clock import Clock, clock_from_env
from shared.idempotency import IdempotencyStore
from shared.messaging import Messaging
from shared.mongo import connect, ping
from shared.observability import add_readiness_check
from shared.service import create_service_app


def create_app(settings: ReturnsSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or ReturnsSettings()
    clock = clock or clock_from_env(settings.clock_file)

    @asynccontextmanager
    async def wiring(app: FastAPI) -> AsyncIterator[None]:
        client, db = connect(settings.mongodb_url, settings.database_name)
        try:
            store = ReturnsStore(db, orders_exchange=settings.orders_exchange)
            await store.ensure_indexes()
            app.state.idempotency = IdempotencyStore(db, clock=clock)
            await app.state.idempotency.ensure_indexes()
            messaging = Messaging.from_settings(
                settings, inbox=db["inbox"], outboxes=[store.returns, store.orders], clock=clock
            )
            app.state.bus = messaging.bus
            lifecycle = app.state.lifecycle = Lifecycle(
                store, MarketplaceRules.from_settings(settings), clock, on_commit=messaging.relay.wake
            )
            job = app.state.deadlines = DeadlineJob(
                lifecycle, interval=settings.job_interval, batch_size=settings.job_batch_size
            )
            add_readiness_check(app, "mongodb", partial(ping, db))
            calendar.preload()  # not inside the first receipt: see shared.calendar.preload
            async with messaging.running(SUBSCRIPTIONS, lifecycle, jobs=[job] if settings.jobs_enabled else []):
                yield
        finally:
            client.close()

    return create_service_app(
        settings,
        title="Returns",
        version="1.0.0",
        description="Orders read-model, seller return policies and the return lifecycle.",
        routers=[api.router],
        lifespan=wiring,
    )
