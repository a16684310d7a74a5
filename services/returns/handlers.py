"""Events the returns service consumes: event type -> one small idempotent function each.

Each handler gets the Lifecycle, the envelope and the event's validated data (shared.messaging).

The service runs without an inbox (app.py), so each handler is idempotent by itself, also when
two copies run at once (two replicas; in one process the bus runs them one after the other):
- order.delivered: an upsert conditional on the snapshot's digest; the same snapshot again fails
  the filter and the unique `_id` refuses the insert (store.save_order).
- return.refunded / refund.failed: a write conditional on the return's `version`; the loser reads
  the return again and finds the refund (or that failure note) recorded: nothing to do.
- buyer.flagged / buyer.unflagged: a write conditional on `sequence: {$lt: ...}`; a copy of the
  same (or an older) decision changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from services.returns.commands import Lifecycle
from services.returns.store import SERVICE
from shared.events import CloudEvent
from shared.messaging import Subscription
from shared.models import BuyerFlag, Order, Refund

log = logging.getLogger(__name__)
SOURCE = f"/services/{SERVICE}"


async def order_delivered(lifecycle: Lifecycle, event: CloudEvent, order: Order) -> None:
    if event.source == SOURCE:  # our own announcement of a `PUT /v1/orders` snapshot: stored by the PUT
        return
    created = await lifecycle.store.save_order(order, sequence=event.sequence)
    log.info("order snapshot stored", extra={"order_id": order.order_id, "new": created, "event_id": event.id})


async def return_refunded(lifecycle: Lifecycle, event: CloudEvent, refund: Refund) -> None:
    if refund.return_id is None:
        refund = refund.model_copy(update={"return_id": event.subject})
    await lifecycle.refunded(refund)


async def refund_failed(lifecycle: Lifecycle, event: CloudEvent, refund: Refund) -> None:
    if refund.return_id is not None:  # a direct refund of an order: no return to note it on
        await lifecycle.refund_failed(refund)


async def buyer_flag_changed(lifecycle: Lifecycle, event: CloudEvent, flag: BuyerFlag) -> None:
    if await lifecycle.store.save_buyer_flag(flag, event.sequence):
        log.info("buyer flag stored", extra={"buyer_id": flag.buyer_id, "flagged": flag.flagged})


SUBSCRIPTIONS: list[Subscription[Lifecycle, Any]] = [
    Subscription("order.delivered", order_delivered),  # on the upstream orders exchange
    Subscription("return.refunded", return_refunded),
    Subscription("refund.failed", refund_failed),
    Subscription("buyer.flagged", buyer_flag_changed),
    Subscription("buyer.unflagged", buyer_flag_changed),
]
