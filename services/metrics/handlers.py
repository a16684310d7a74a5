"""Event type -> one small idempotent function: keep the newest fact, then count it in the buyer's
window and re-assess the buyer (one conditional write of the buyer's document).

Re-assessing on every event (not only when a fact changed) is what makes a crash between the fact
write and the flag write harmless: the redelivered event settles the flag.

Metrics keeps no inbox (app.py): every copy of an event reaches its handler, at any replica, and
changes nothing the first did. A fact is written only over an older version, a window takes an
entry once by id, and the buyer's write is conditional on the revision it read; nothing is `$inc`.

Claims, chargebacks, seller feedback and expired orders are facts of the same kind (dispute_facts.py):
one conditional upsert each, read only by the order defect rate's reports, which join them to
the seller's deliveries by order id at query time; so feedback or a claim that arrives before its
order's `order.delivered` counts once that comes.

Metrics counts every registered event type by the model of its data (COUNTED), except those named
in IGNORED with the reason. So a new `return.*` type is counted with no edit here, and a type with
a new kind of data stops the service from starting until it is counted or ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from services.metrics import telemetry
from services.metrics.dispute_facts import chargeback_fact, claim_fact, expired_fact, feedback_fact
from services.metrics.facts import delivery_fact, refund_fact, return_fact
from services.metrics.flags import BuyerFlags
from services.metrics.resolution_facts import store_credit_fact
from services.metrics.store import Kept
from shared.dispute_models import Chargeback, Claim, ExpiredOrder, SellerFeedback
from shared.events import EVENT_TYPES, CloudEvent, EventType
from shared.messaging import Subscription
from shared.models import Notification, Order, Refund, Return
from shared.resolution_models import StoreCreditEntry


def _count(event: CloudEvent, applied: bool) -> None:
    telemetry.events_applied.labels(event.type, "applied" if applied else "stale").inc()


async def return_changed(flags: BuyerFlags, event: CloudEvent, ret: Return) -> None:
    kept = await flags.store.record_return(return_fact(ret))
    _count(event, bool(kept))
    # The standing counts returns by creation time and order only: later transitions of a
    # return cannot change it, and return.created always comes (perhaps late) to count it. The
    # first event seen of a return counts it too, so one arriving before its return.created
    # counts at once (as the facts it is recorded in do).
    if event.type == "return.created" or kept is Kept.FIRST:
        await flags.note_return(ret.buyer.id, ret.return_id, ret.order_id, ret.created_at)


async def refund_changed(flags: BuyerFlags, event: CloudEvent, refund: Refund) -> None:
    _count(event, bool(await flags.store.record_refund(refund_fact(refund))))


async def order_delivered(flags: BuyerFlags, event: CloudEvent, order: Order) -> None:
    _count(event, bool(await flags.store.record_delivery(delivery_fact(order, event.sequence))))
    await flags.note_delivery(order.buyer.id, order.order_id, event.sequence, order.delivered_at)


async def notification_settled(flags: BuyerFlags, event: CloudEvent, note: Notification) -> None:
    _count(event, bool(await flags.store.record_notification(note)))


async def claim_changed(flags: BuyerFlags, event: CloudEvent, claim: Claim) -> None:
    _count(event, bool(await flags.store.disputes.record_claim(claim_fact(claim))))


async def chargeback_changed(flags: BuyerFlags, event: CloudEvent, chargeback: Chargeback) -> None:
    _count(event, bool(await flags.store.disputes.record_chargeback(chargeback_fact(chargeback))))


async def feedback_changed(flags: BuyerFlags, event: CloudEvent, feedback: SellerFeedback) -> None:
    _count(event, bool(await flags.store.disputes.record_feedback(feedback_fact(feedback))))


async def store_credit_moved(flags: BuyerFlags, event: CloudEvent, entry: StoreCreditEntry) -> None:
    _count(event, bool(await flags.store.store_credit.record(store_credit_fact(entry))))


async def order_expired(flags: BuyerFlags, event: CloudEvent, order: ExpiredOrder) -> None:
    _count(event, bool(await flags.store.disputes.record_expired(expired_fact(order, event.sequence))))


# data model -> the handler that counts events carrying it
COUNTED: Mapping[type[BaseModel], Callable[..., Any]] = {
    Return: return_changed,
    Refund: refund_changed,
    Order: order_delivered,
    Notification: notification_settled,
    Claim: claim_changed,
    Chargeback: chargeback_changed,
    SellerFeedback: feedback_changed,
    ExpiredOrder: order_expired,
    StoreCreditEntry: store_credit_moved,
}

# event type -> why metrics does not count it
IGNORED: Mapping[str, str] = {
    "seller.response_due_soon": "a reminder: the return itself did not change",
    "buyer.flagged": "metrics' own announcement",
    "buyer.unflagged": "metrics' own announcement",
    "claim.response_due_soon": "a reminder: nothing the order defect rate reads changed",
}


def _subscription(registered: EventType) -> Subscription[BuyerFlags, Any]:
    handler = COUNTED.get(registered.data)
    if handler is None:
        raise LookupError(
            f"metrics neither counts nor ignores {registered.name!r} "
            f"({registered.data.__name__}): add it to COUNTED or IGNORED"
        )
    return Subscription(registered.name, handler)


SUBSCRIPTIONS: list[Subscription[BuyerFlags, Any]] = [
    _subscription(registered) for registered in EVENT_TYPES.values() if registered.name not in IGNORED
]
