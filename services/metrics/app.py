"""The metrics service: consumes return, refund and delivery events into facts; serves figures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.metrics import api
from services.metrics.abuse import Thresholds
from services.metrics.flags import BuyerFlags
from services.metrics.handlers import SUBSCRIPTIONS
from services.metrics.jobs import flag_review
from services.metrics.reports import Reports
from services.metrics.settings import Settings
from services.metrics.store import MetricsStore
from shared.clock import Clock
from shared.messaging import Messaging
from shared.mongo import Database
from shared.service import create_database_service_app

# The OpenAPI document's description of the service.
DESCRIPTION = "Seller performance, return rates and buyer abuse flags (docs/product.md §9)."


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        window_days=settings.abuse_window_days,
        max_returns=settings.abuse_max_returns,
        max_return_rate=settings.abuse_max_return_rate,
        min_orders=settings.abuse_min_orders,
    )


@asynccontextmanager
async def wiring(app: FastAPI, db: Database, settings: Settings, clock: Clock) -> AsyncIterator[None]:
    store = MetricsStore(db)
    await store.ensure_indexes()
    # No inbox: every handler's effect is a write conditional on the fact's version or the buyer's
    # revision, so a duplicate changes nothing and costs no dedupe read and write per event.
    messaging = Messaging.from_settings(settings, inbox=None, outboxes=[store.buyers])
    store.outbox_relay = messaging.relay  # a flag's event is committed claimed for it
    app.state.bus = messaging.bus
    flags = BuyerFlags(store, thresholds(settings), clock, on_change=messaging.relay.wake)
    app.state.reports = Reports(store, flags, settings, clock)
    review = flag_review(flags, settings.flag_sweep_interval_s)
    async with messaging.running(SUBSCRIPTIONS, flags, jobs=[review]):
        yield


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    return create_database_service_app(
        settings or Settings(),
        clock,
        wiring,
        title="Metrics",
        description=DESCRIPTION,
        routers=[api.router],
        idempotency=False,
    )
