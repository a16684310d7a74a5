"""Wires chargebacks into the disputes app: store, Stripe client, desk (app.state.chargebacks), retry job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from services.disputes.chargebacks.desk import ChargebackDesk, EvidenceRetryJob
from services.disputes.chargebacks.store import ChargebackStore
from services.disputes.chargebacks.stripe_disputes import StripeDisputes
from services.disputes.orders import OrderBook
from services.disputes.rulebook import DisputeRules
from services.disputes.settings import Settings
from shared.clock import Clock
from shared.outbox import OutboxRelay


def _not_wired(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("chargebacks: the outbox relay is not attached (ChargebackParts.running)")


@dataclass
class ChargebackParts:
    store: ChargebackStore
    gateway: StripeDisputes
    desk: ChargebackDesk
    job: EvidenceRetryJob
    enabled_jobs: bool

    @property
    def outboxes(self) -> list[Any]:
        """The collections whose outbox the service's relay publishes."""
        return [self.store.chargebacks]

    @property
    def jobs(self) -> list[EvidenceRetryJob]:
        return [self.job] if self.enabled_jobs else []

    @asynccontextmanager
    async def running(self, relay: OutboxRelay) -> AsyncIterator[None]:
        """Commit events claimed for `relay` and wake it; close the Stripe client on leaving."""
        self.store.outbox_relay, self.desk.on_commit = relay, relay.wake
        try:
            yield
        finally:
            await self.gateway.close()


async def chargebacks_wired(
    app: FastAPI, db: Any, settings: Settings, clock: Clock, orders: OrderBook, rules: DisputeRules
) -> ChargebackParts:
    store = ChargebackStore(db)
    await store.ensure_indexes()
    gateway = StripeDisputes(settings.stripe_api_key, settings.stripe_api_base, settings.stripe_timeout_s)
    desk = app.state.chargebacks = ChargebackDesk(
        store, orders, gateway, clock, rules.evidence_days, on_commit=_not_wired
    )
    job = app.state.chargeback_job = EvidenceRetryJob(
        desk, interval_s=settings.job_interval_s, batch_size=settings.job_batch_size
    )
    return ChargebackParts(store, gateway, desk, job, settings.jobs_enabled)
