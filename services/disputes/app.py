"""The disputes service app: A-to-z claims, chargebacks and seller feedback (docs/product.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.disputes import api, feedback_api
from services.disputes.chargebacks import api as chargebacks_api
from services.disputes.chargebacks.wiring import chargebacks_wired
from services.disputes.claims import ClaimDesk
from services.disputes.feedback import FeedbackDesk
from services.disputes.handlers import RETIRED, SUBSCRIPTIONS, Disputes
from services.disputes.jobs import ClaimDeadlineJob
from services.disputes.orders import OrderBook
from services.disputes.rulebook import DisputeRules
from services.disputes.settings import Settings
from services.disputes.store import ClaimsStore
from shared import ops_metrics
from shared.clock import Clock
from shared.messaging import Messaging
from shared.mongo import Database
from shared.service import create_database_service_app

# The OpenAPI document's description of the service.
DESCRIPTION = "A-to-z guarantee claims, card chargebacks and seller feedback."
ROUTERS = [api.router, feedback_api.router, chargebacks_api.router]


@asynccontextmanager
async def wiring(app: FastAPI, db: Database, settings: Settings, clock: Clock) -> AsyncIterator[None]:
    rules = DisputeRules.from_settings(settings)  # the marketplaces' claim rules, the settings laid over
    orders = OrderBook(db["order_facts"])
    await orders.ensure_indexes()
    store = ClaimsStore(db)
    await store.ensure_indexes()
    chargebacks = await chargebacks_wired(app, db, settings, clock, orders, rules)
    # No inbox: every handler is idempotent on its own (handlers.py).
    outboxes = [store.claims, store.feedback, *chargebacks.outboxes]
    messaging = Messaging.from_settings(settings, inbox=None, outboxes=outboxes, clock=clock)
    store.outbox_relay = messaging.relay  # a claim's or feedback's events are committed claimed for it
    app.state.bus = messaging.bus
    wake = messaging.relay.wake
    claims = app.state.claims = ClaimDesk(store, orders, rules, clock, on_commit=wake)
    app.state.feedback = FeedbackDesk(store, orders, clock, on_commit=wake)
    deadlines = app.state.claim_deadlines = ClaimDeadlineJob(
        claims, interval_s=settings.job_interval_s, batch_size=settings.job_batch_size
    )
    jobs = ([deadlines] if settings.jobs_enabled else []) + chargebacks.jobs
    disputes = app.state.disputes = Disputes(orders=orders, claims=claims)
    async with (
        chargebacks.running(messaging.relay),
        messaging.running(SUBSCRIPTIONS, disputes, jobs=jobs, retired=RETIRED),
    ):
        ops_metrics.watch(store, past_deadline_source(store, clock, settings.service_name))
        try:
            yield
        finally:
            ops_metrics.unwatch(store)


def past_deadline_source(store: ClaimsStore, clock: Clock, service: str) -> ops_metrics.Source:
    """`claims_open_past_deadline`, counted when /metrics is scraped (shared.ops_metrics)."""

    async def source() -> None:
        ops_metrics.CLAIMS_PAST_DEADLINE.labels(service).set(await store.count_past_deadline(clock.now()))

    return source


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    return create_database_service_app(
        settings or Settings(), clock, wiring, title="Disputes", description=DESCRIPTION, routers=ROUTERS
    )
