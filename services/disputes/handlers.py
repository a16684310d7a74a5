"""Events the disputes service consumes: event type -> one small idempotent function each.

Each handler gets the service's Disputes context, the envelope and the validated data
(shared.messaging). No inbox: every effect is a conditional write keyed by an id or a version, so
a redelivery or two copies at once change nothing more:
- order.delivered, return.*, refund.issued -> OrderBook (services/disputes/orders.py): upserts
  conditional on the snapshot's absence, the refund's id, the return's version.
- refund.issued / refund.failed of kind `claim`: the claim is closed by a write conditional on its
  version, only from `paying`; the loser of a race (or a redelivery) reads it closed: nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.disputes.claims import ClaimDesk
from services.disputes.orders import OrderBook
from shared.events import CloudEvent
from shared.messaging import Subscription
from shared.models import ALREADY_REFUNDED, Order, Refund, RefundKind, Return


@dataclass(frozen=True)
class Disputes:
    """What the handlers act on (the wiring builds it)."""

    orders: OrderBook
    claims: ClaimDesk


async def order_delivered(disputes: Disputes, event: CloudEvent, order: Order) -> None:
    await disputes.orders.save_order(order)


async def return_changed(disputes: Disputes, event: CloudEvent, ret: Return) -> None:
    await disputes.orders.note_return(ret)


async def refund_issued(disputes: Disputes, event: CloudEvent, refund: Refund) -> None:
    await disputes.orders.note_refund(refund)  # every kind counts toward what the order had refunded
    if refund.kind == RefundKind.CLAIM:
        await disputes.claims.refund_issued(refund)


async def refund_failed(disputes: Disputes, event: CloudEvent, refund: Refund) -> None:
    # Other failures of a claim's refund leave it `paying`: an agent retries it in the refunds service.
    if refund.kind == RefundKind.CLAIM and refund.failure_reason == ALREADY_REFUNDED:
        await disputes.claims.refund_failed_already_refunded(refund)


# Every return event that changes what a claim may be filed for (status, deadlines, rejection).
# Which return a refund paid for comes with refund.issued (its `return_id`).
RETURN_EVENTS = (
    "return.created",
    "return.authorized",
    "return.rejected",
    "return.closed",
    "return.received",
    "return.expired",
)

# Types an older version consumed: unbound at start. `return.shipped` moves a return from authorized
# to shipped, and a claim about a return may be filed in neither (services/disputes/eligibility.py).
RETIRED = ("return.shipped",)

SUBSCRIPTIONS: list[Subscription[Disputes, Any]] = [
    Subscription("order.delivered", order_delivered),  # on the upstream orders exchange
    *(Subscription(event_type, return_changed) for event_type in RETURN_EVENTS),
    Subscription("refund.issued", refund_issued),
    Subscription("refund.failed", refund_failed),
]
