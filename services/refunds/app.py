"""The refunds service app: its lifespan wires store, gateways, refund use cases, messaging and the job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from services.refunds import api
from services.refunds.gateways import PaymentGateway
from services.refunds.gateways.ledger import LedgerGateway
from services.refunds.gateways.stripe_gateway import StripeGateway
from services.refunds.handlers import SUBSCRIPTIONS
from services.refunds.jobs import RefundDeadlineJob
from services.refunds.paying import Payer
from services.refunds.refunding import Refunds
from services.refunds.settings import Settings
from services.refunds.store import RefundStore
from services.refunds.store_credit import api as store_credit_api
from services.refunds.store_credit.gateway import StoreCreditGateway
from services.refunds.store_credit.store import StoreCreditStore
from shared.clock import Clock
from shared.messaging import Announcer, Job, Messaging
from shared.mongo import Database
from shared.outbox import OutboxRelay
from shared.service import create_database_service_app

# The OpenAPI document's description of the service.
DESCRIPTION = "Refund amounts, payment-gateway calls, refund deadlines."


@asynccontextmanager
async def wiring(app: FastAPI, db: Database, settings: Settings, clock: Clock) -> AsyncIterator[None]:
    gateways: dict[str, PaymentGateway] = {}
    try:
        store = app.state.store = RefundStore(db)
        await store.ensure_indexes()
        credit = app.state.store_credit = StoreCreditStore(db, clock)
        await credit.ensure_indexes()
        # No inbox: every handler is idempotent on its own (handlers.py), so no event id is looked up
        # or recorded per event.
        messaging = Messaging.from_settings(settings, inbox=None, outboxes=[store.refunds], clock=clock)
        store.outbox_relay = messaging.relay  # a refund's events are committed claimed for it
        # store_credit.* are announcements: a type no queue is bound to (every subscriber may ignore
        # store_credit.debited) counts as published instead of being retried forever.
        credit.outbox_relay = credit_relay = OutboxRelay.from_settings(
            Announcer(messaging.bus), [credit.entries], settings
        )
        app.state.bus = messaging.bus
        ledger = LedgerGateway(db["ledger_entries"], clock)
        await ledger.ensure_indexes()
        gateways.update(
            stripe=StripeGateway(settings.stripe_api_key, settings.stripe_api_base, settings.gateway_timeout_s),
            ledger=ledger,
            store_credit=StoreCreditGateway(credit, clock),
        )
        payer = Payer(
            store,
            gateways,
            clock,
            lease=timedelta(seconds=settings.lease_s),
            retry_delays_ms=settings.gateway_retry_delays_ms,
            timeout_s=settings.gateway_timeout_s,
            marketplaces=settings.served_marketplaces(),
            committed=messaging.relay.wake,
        )
        refunds = app.state.refunds = Refunds(store, payer, clock)
        job = app.state.deadline_job = RefundDeadlineJob(
            refunds,
            clock,
            interval_s=settings.job_interval_s,
            sweep_interval_s=settings.sweep_interval_s,
            lease=timedelta(seconds=settings.lease_s),
            batch_size=settings.job_batch_size,
        )
        jobs: list[Job] = [credit_relay, *([job] if settings.jobs_enabled else [])]
        async with messaging.running(SUBSCRIPTIONS, refunds, jobs=jobs):
            yield
    finally:
        for gateway in gateways.values():
            await gateway.close()


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    return create_database_service_app(
        settings or Settings(),
        clock,
        wiring,
        title="Refunds",
        description=DESCRIPTION,
        routers=[api.router, store_credit_api.router],
    )
