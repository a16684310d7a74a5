"""Event type -> one small idempotent function: keep the newest fact, then re-assess the buyer.

Re-assessing on every event (not only when a fact changed) is what makes a crash between the fact
write and the flag write harmless: the redelivered event settles the flag.
"""
from __future__ import annotations

from services.metrics import telemetry
from services.metrics.facts import delivery_fact, refund_fact, return_fact
from services.metrics.flags import BuyerFlags
from services.metrics.store import MetricsStore
from shared.events import CloudEvent
from shared.models import Notification, Order, Refund, Return

RETURN_EVENTS = ("return.created", "return.authorized", "return.rejected", "return.closed",
                 "return.shipped", "return.received", "return.expired", "return.feedback_received")
REFUND_EVENTS = ("return.refunded", "refund.issued", "refund.failed")
ORDER_EVENTS = ("order.delivered",)  # on the orders exchange
NOTIFICATION_EVENTS = ("notification.sent", "notification.failed")


def _count(event: CloudEvent, applied: bool) -> None:
    telemetry.events_applied.labels(event.type, "applied" if applied else "stale").inc()


class Handlers:
    def __init__(self, store: MetricsStore, flags: BuyerFlags) -> None:
        self.store, self.flags = store, flags

    async def on_return(self, event: CloudEvent) -> None:
        ret = event.typed()
        assert isinstance(ret, Return)
        _count(event, await self.store.record_return(return_fact(ret)))
        # The standing counts returns by creation time and order only: later transitions of a
        # return cannot change it, and return.created always comes (perhaps late) to settle it.
        if event.type == "return.created":
            await self.flags.settle(ret.buyer.id)

    async def on_refund(self, event: CloudEvent) -> None:
        refund = event.typed()
        assert isinstance(refund, Refund)
        _count(event, await self.store.record_refund(refund_fact(refund)))

    async def on_order_delivered(self, event: CloudEvent) -> None:
        order = event.typed()
        assert isinstance(order, Order)
        _count(event, await self.store.record_delivery(delivery_fact(order, event.sequence)))
        await self.flags.settle(order.buyer.id)

    async def on_notification(self, event: CloudEvent) -> None:
        note = event.typed()
        assert isinstance(note, Notification)
        _count(event, await self.store.record_notification(note))

    def subscriptions(self, orders_exchange: str) -> list[tuple[str, object, str | None]]:
        """(event type, handler, exchange or None for the returns exchange), read at start-up."""
        return ([(t, self.on_return, None) for t in RETURN_EVENTS]
                + [(t, self.on_refund, None) for t in REFUND_EVENTS]
                + [(t, self.on_notification, None) for t in NOTIFICATION_EVENTS]
                + [(t, self.on_order_delivered, orders_exchange) for t in ORDER_EVENTS])
