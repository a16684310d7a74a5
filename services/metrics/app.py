"""The metrics service: consumes return, refund and delivery events into facts; serves figures."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.metrics import api
from services.metrics.abuse import Thresholds
from services.metrics.flags import BuyerFlags
from services.metrics.handlers import Handlers
from services.metrics.jobs import flag_review
from services.metrics.reports import Reports
from services.metrics.settings import Settings
from services.metrics.store import MetricsStore
from shared.bus import EventBus
from shared.clock import Clock, clock_from_env
from shared.mongo import connect, ping
from shared.observability import add_readiness_check
from shared.outbox import OutboxRelay
from shared.service import create_service_app


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(window_days=settings.abuse_window_days, max_returns=settings.abuse_max_returns,
                      max_return_rate=settings.abuse_max_return_rate, min_orders=settings.abuse_min_orders)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    clock = clock or clock_from_env(settings.clock_file)

    @asynccontextmanager
    async def wiring(app: FastAPI) -> AsyncIterator[None]:
        client, db = connect(settings.mongodb_url, settings.database_name)
        bus = relay = review = None
        try:
            store = MetricsStore(db)
            await store.create_indexes()
            bus = EventBus.from_settings(settings, inbox=store.inbox)
            await bus.connect()
            # The relay's leases are operational time, not the (possibly moved) business clock.
            relay = OutboxRelay(bus, [store.buyers], poll_interval=settings.outbox_poll_ms / 1000)
            flags = BuyerFlags(store, thresholds(settings), clock, on_change=relay.wake)
            handlers = Handlers(store, flags)
            for event_type, handler, exchange in handlers.subscriptions(settings.orders_exchange):
                bus.subscribe(event_type, handler, exchange=exchange)
            await relay.start()
            await bus.start()
            review = flag_review(flags, settings.flag_sweep_interval_s)
            review.start()
            app.state.reports = Reports(store, flags, settings, clock)
            app.state.bus = bus
            add_readiness_check(app, "mongodb", lambda: ping(db))
            add_readiness_check(app, "amqp", lambda: not bus.connection.is_closed)
            yield
        finally:
            if review is not None:
                await review.stop()
            if relay is not None:
                await relay.stop()
            if bus is not None:
                await bus.close()
            client.close()

    return create_service_app(settings, title="Metrics", version="1.0.0",
                              description="Seller performance, return rates and buyer abuse flags (SPEC §9).",
                              routers=[api.router], lifespan=wiring)
