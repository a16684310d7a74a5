"""Event type -> one small idempotent function each, and the subscriptions read at start-up."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from services.refunds.refunding import Refunds
from services.refunds.store import RefundStore
from shared.events import ORDERS_EXCHANGE, CloudEvent
from shared.models import Order, Receipt, Return

log = logging.getLogger(__name__)
Handler = Callable[[CloudEvent], Awaitable[None]]


class ReceivedReturn(Return):
    """`return.received` data as refunds relies on it: the receipt, and the refund deadline the
    returns service set (the one truth; refunds never computes its own). Without them the event
    is invalid and parked."""

    received_at: datetime
    refund_due_at: datetime
    receipt: Receipt


@dataclass(frozen=True)
class Subscription:
    event_type: str
    handler: Handler
    exchange: str | None = None  # None: the platform's returns.events


def subscriptions(store: RefundStore, refunds: Refunds, orders_exchange: str = ORDERS_EXCHANGE) -> list[Subscription]:
    async def order_delivered(event: CloudEvent) -> None:
        order = Order.model_validate(event.data)
        await store.save_order(order)

    async def return_received(event: CloudEvent) -> None:
        await refunds.open_for_return(ReceivedReturn.model_validate(event.data))

    async def return_authorized(event: CloudEvent) -> None:
        ret = Return.model_validate(event.data)
        if ret.authorization is not None and ret.authorization.returnless:
            await refunds.open_for_return(ret)
        else:
            await store.note_return(ret)

    async def return_closed(event: CloudEvent) -> None:
        # Remembered so that a returnless authorization arriving late is not refunded.
        await store.note_return(Return.model_validate(event.data))

    return [
        Subscription("order.delivered", order_delivered, orders_exchange),
        Subscription("return.received", return_received),
        Subscription("return.authorized", return_authorized),
        Subscription("return.closed", return_closed),
    ]
