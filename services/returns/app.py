"""The returns service app: its lifespan wires store, bus, handlers, outbox relay and deadline job."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from shared import calendar
from shared.bus import EventBus
from shared.clock import Clock, clock_from_env
from shared.idempotency import IdempotencyStore
from shared.mongo import connect, ping
from shared.observability import add_readiness_check
from shared.outbox import OutboxRelay
from shared.service import create_service_app
from services.returns import api
from services.returns.commands import Lifecycle
from services.returns.handlers import SUBSCRIPTIONS
from services.returns.jobs import DeadlineJob
from services.returns.policy import MarketplaceRules
from services.returns.settings import ReturnsSettings
from services.returns.store import ReturnsStore


def create_app(settings: ReturnsSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or ReturnsSettings()
    clock = clock or clock_from_env(settings.clock_file)

    @asynccontextmanager
    async def wiring(app: FastAPI) -> AsyncIterator[None]:
        client, db = connect(settings.mongodb_url, settings.database_name)
        store = ReturnsStore(db, orders_exchange=settings.orders_exchange)
        await store.ensure_indexes()
        app.state.idempotency = IdempotencyStore(db, clock=clock)
        await app.state.idempotency.ensure_indexes()
        bus = app.state.bus = EventBus.from_settings(settings, inbox=db["inbox"], clock=clock)
        # The relay's leases are operational time, not the (possibly moved) business clock.
        relay = OutboxRelay(bus, [store.returns, store.orders], poll_interval=settings.outbox_poll_ms / 1000)
        lifecycle = Lifecycle(store, MarketplaceRules.from_settings(settings), clock, on_commit=relay.wake)
        app.state.lifecycle = lifecycle
        job = DeadlineJob(lifecycle, interval=settings.job_interval, batch_size=settings.job_batch_size)
        app.state.deadlines = job
        add_readiness_check(app, "mongodb", partial(ping, db))
        add_readiness_check(app, "amqp", lambda: bus.connection is not None and not bus.connection.is_closed)
        calendar.preload()  # not inside the first receipt: see shared.calendar.preload
        try:
            await bus.connect()
            for sub in SUBSCRIPTIONS:
                bus.subscribe(sub.event_type, partial(sub.handler, lifecycle),
                              exchange=settings.orders_exchange if sub.from_orders else None)
            await bus.start()
            await relay.start()
            if settings.jobs_enabled:
                await job.start()
            yield
        finally:
            await job.stop()
            await relay.stop()
            await bus.close()
            client.close()

    return create_service_app(settings, title="Returns", version="1.0.0",
                              description="Orders read-model, seller return policies and the return lifecycle.",
                              routers=[api.router], lifespan=wiring)
