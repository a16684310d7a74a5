"""The returns service app: its lifespan wires store, lifecycle, messaging and the deadline job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.returns import api, offers_api, replacement_api
from services.returns.commands import Lifecycle
from services.returns.handlers import SUBSCRIPTIONS
from services.returns.jobs import DeadlineJob
from services.returns.rulebook import RuleBook
from services.returns.settings import Settings
from services.returns.store import ReturnsStore
from shared import calendar
from shared.clock import Clock
from shared.messaging import Messaging
from shared.mongo import Database
from shared.service import create_database_service_app

# The OpenAPI document's description of the service.
DESCRIPTION = "Orders read-model, seller return policies and the return lifecycle."


@asynccontextmanager
async def wiring(app: FastAPI, db: Database, settings: Settings, clock: Clock) -> AsyncIterator[None]:
    store = ReturnsStore(db, orders_exchange=settings.orders_exchange)
    await store.ensure_indexes()
    # No inbox: every handler is idempotent on its own, duplicates and concurrent copies included
    # (handlers.py says how each one is), which saves two commands per consumed event.
    messaging = Messaging.from_settings(settings, inbox=None, outboxes=[store.returns, store.orders], clock=clock)
    store.outbox_claim, store.outbox_claimable = messaging.relay.claim, messaging.relay.claimable
    app.state.bus = messaging.bus
    # Each marketplace's rules (installed at start-up by shared.service), with the settings' overrides.
    book = RuleBook.from_settings(settings)
    lifecycle = app.state.lifecycle = Lifecycle(store, book, clock, on_commit=messaging.relay.wake)
    job = app.state.deadlines = DeadlineJob(
        lifecycle, interval=settings.job_interval, batch_size=settings.job_batch_size
    )
    calendar.preload()  # not inside the first receipt: see shared.calendar.preload
    async with messaging.running(SUBSCRIPTIONS, lifecycle, jobs=[job] if settings.jobs_enabled else []):
        yield


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    return create_database_service_app(
        settings or Settings(),
        clock,
        wiring,
        title="Returns",
        description=DESCRIPTION,
        routers=[api.router, offers_api.router, replacement_api.router],
    )
