"""The disputes service app: A-to-z claims, chargebacks and seller feedback (docs/product.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.disputes.chargebacks import api as chargebacks_api
from services.disputes.chargebacks.wiring import chargebacks_wired
from services.disputes.handlers import SUBSCRIPTIONS, Disputes
from services.disputes.orders import OrderBook
from services.disputes.settings import Settings
from shared.clock import Clock
from shared.messaging import Messaging
from shared.mongo import Database
from shared.service import create_database_service_app

# The OpenAPI document's description of the service.
DESCRIPTION = "A-to-z guarantee claims, card chargebacks and seller feedback."


@asynccontextmanager
async def wiring(app: FastAPI, db: Database, settings: Settings, clock: Clock) -> AsyncIterator[None]:
    orders = OrderBook(db["order_facts"])
    await orders.ensure_indexes()
    chargebacks = await chargebacks_wired(app, db, settings, clock, orders)
    # No inbox: every handler is idempotent on its own (handlers.py).
    messaging = Messaging.from_settings(settings, inbox=None, outboxes=[*chargebacks.outboxes], clock=clock)
    app.state.bus = messaging.bus
    disputes = app.state.disputes = Disputes(orders=orders)
    async with (
        chargebacks.running(messaging.relay),
        messaging.running(SUBSCRIPTIONS, disputes, jobs=[*chargebacks.jobs]),
    ):
        yield


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    return create_database_service_app(
        settings or Settings(),
        clock,
        wiring,
        title="Disputes",
        description=DESCRIPTION,
        routers=[chargebacks_api.router],
    )
