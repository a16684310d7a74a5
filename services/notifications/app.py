"""The notifications service: consumes return and refund events, emails buyers and sellers (docs/product.md §8)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.notifications import api
from services.notifications.handlers import SUBSCRIPTIONS
from services.notifications.jobs import Dispatcher
from services.notifications.mail import Mailer
from services.notifications.settings import Settings
from services.notifications.store import NotificationStore
from services.notifications.webhooks import api as webhooks_api
from services.notifications.webhooks.bindings import WebhookQueue
from services.notifications.webhooks.delivery import DeliveryWorker
from services.notifications.webhooks.store import WebhookStore
from shared.clock import Clock
from shared.messaging import Messaging
from shared.mongo import Database
from shared.service import create_database_service_app

# The OpenAPI document's description of the service.
DESCRIPTION = "Emails buyers and sellers at every step of a return (docs/product.md §8)."


@asynccontextmanager
async def wiring(app: FastAPI, db: Database, settings: Settings, clock: Clock) -> AsyncIterator[None]:
    store = app.state.notifications = NotificationStore(db)
    await store.ensure_indexes()
    # notification.* are announcements: with no one subscribed they count as published. No inbox:
    # recording an event's emails is idempotent by itself (one email per event, recipient and
    # template: a unique index), so a redelivered event adds nothing without an inbox read and write.
    messaging = Messaging.from_settings(settings, inbox=None, outboxes=[store.collection], announcements=True)
    store.outbox_relay = messaging.relay  # an outcome's notification.* is committed claimed for it
    app.state.bus, app.state.clock = messaging.bus, clock
    dispatcher = app.state.dispatcher = Dispatcher(store, Mailer(settings), settings, clock, messaging.relay)
    # Webhooks: their own queue, bound only to the types registered endpoints subscribe to.
    webhooks = app.state.webhooks = WebhookStore(db)
    await webhooks.ensure_indexes()
    worker = app.state.webhook_worker = DeliveryWorker(webhooks, settings, clock)
    queue = app.state.webhook_queue = WebhookQueue(
        messaging.bus,
        webhooks,
        worker,
        clock,
        exchanges=messaging.exchanges,
        reconcile_s=settings.webhooks_reconcile_s,
        prefetch=settings.prefetch,
    )
    async with messaging.running(SUBSCRIPTIONS, dispatcher, jobs=[dispatcher, worker, queue]):
        yield


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    return create_database_service_app(
        settings or Settings(),
        clock,
        wiring,
        title="Notifications",
        description=DESCRIPTION,
        routers=[api.router, webhooks_api.router],
    )
