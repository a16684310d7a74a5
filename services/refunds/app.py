"""The refunds service app: its lifespan wires store, gateways, bus, handlers, outbox relay and job."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial

from fastapi import FastAPI

from services.refunds import api
from services.refunds.gateways import PaymentGateway
from services.refunds.gateways.ledger import LedgerGateway
from services.refunds.gateways.stripe_gateway import StripeGateway
from services.refunds.handlers import subscriptions
from services.refunds.jobs import RefundDeadlineJob
from services.refunds.paying import Payer
from services.refunds.refunding import Refunds
from services.refunds.settings import Settings
from services.refunds.store import RefundStore
from shared.bus import EventBus
from shared.clock import Clock, clock_from_env
from shared.idempotency import IdempotencyStore
from shared.mongo import connect, ping
from shared.observability import add_readiness_check
from shared.outbox import OutboxRelay
from shared.service import create_service_app


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    clock = clock or clock_from_env(settings.clock_file)

    @asynccontextmanager
    async def wiring(app: FastAPI) -> AsyncIterator[None]:
        client, db = connect(settings.mongodb_url, settings.database_name)
        store = RefundStore(db)
        await store.ensure_indexes()
        app.state.store = store
        app.state.idempotency = IdempotencyStore(db, clock=clock)
        await app.state.idempotency.ensure_indexes()
        bus = app.state.bus = EventBus.from_settings(settings, inbox=db["inbox"], clock=clock)
        # The relay's leases are operational time, not the (possibly moved) business clock.
        relay = OutboxRelay(bus, [store.refunds], poll_interval=settings.outbox_poll_ms / 1000)
        gateways: dict[str, PaymentGateway] = {
            "stripe": StripeGateway(settings.stripe_api_key, settings.stripe_api_base, settings.gateway_timeout_s),
            "ledger": LedgerGateway(db["ledger_entries"], clock)}
        payer = Payer(store, gateways, clock, lease=timedelta(seconds=settings.lease_s),
                      retry_delays_ms=settings.gateway_retry_delays_ms, timeout_s=settings.gateway_timeout_s,
                      committed=relay.wake)
        refunds = app.state.refunds = Refunds(store, payer, clock)
        job = app.state.deadline_job = RefundDeadlineJob(refunds, clock, interval_s=settings.job_interval_s,
                                                         batch_size=settings.job_batch_size)
        add_readiness_check(app, "mongodb", partial(ping, db))
        add_readiness_check(app, "amqp", lambda: bus.connection is not None and not bus.connection.is_closed)
        try:
            await bus.connect()
            for sub in subscriptions(store, refunds, settings.orders_exchange):
                bus.subscribe(sub.event_type, sub.handler, exchange=sub.exchange)
            await bus.start()
            await relay.start()
            if settings.jobs_enabled:
                job.start()
            yield
        finally:
            await job.stop()
            await bus.close()
            await relay.stop()
            for gateway in gateways.values():
                await gateway.close()
            client.close()

    return create_service_app(settings, title="Refunds", version="1.0.0",
                              description="Refund amounts, payment-gateway calls, refund deadlines.",
                              routers=[api.router], lifespan=wiring)
