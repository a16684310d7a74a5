"""What the disputes service knows of each order: its snapshot, the refunds paid on it, its returns.

Built from `order.delivered`, `return.*` and `refund.issued` (event-carried state: no call back
to the returns or refunds service). Claims are checked against it (how much is still refundable,
whether a return's refund is overdue) and chargebacks find their order by payment reference.
Every write is one conditional update of the order's document, so each handler is idempotent and
events may arrive in any order: a refund or a return seen before its order waits in the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from motor.motor_asyncio import AsyncIOMotorCollection

from shared.models import STORED, Order, Refund, Return, ReturnStatus
from shared.postage import postage_paid_by_buyer
from shared.upserts import UpsertBatcher


@dataclass(frozen=True)
class ReturnFacts:
    """The parts of a return that decide whether a claim about it may be filed."""

    return_id: str
    status: ReturnStatus
    version: int
    in_policy: bool
    response_due_at: datetime
    refund_due_at: datetime | None
    # Return postage the buyer paid on an unpaid label, once the item is back: the refunds service
    # then counts it in what the buyer paid on the order (its refund cap), and so does a claim.
    postage_paid: int = 0
    # A refund of this return was issued (refund.issued names it). Kept apart from the return's own
    # facts: returns publishes no event once it is refunded, and a refund may arrive before receipt.
    refunded: bool = False

    @classmethod
    def of(cls, ret: Return) -> ReturnFacts:
        postage = postage_paid_by_buyer(ret) if ret.received_at is not None and not ret.replacing() else None
        return cls(
            return_id=ret.return_id,
            status=ret.status,
            version=ret.version,
            in_policy=ret.in_policy,
            response_due_at=ret.response_due_at,
            refund_due_at=ret.refund_due_at,
            postage_paid=0 if postage is None else postage.amount,
        )

    def fields(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "version": self.version,
            "in_policy": self.in_policy,
            "response_due_at": self.response_due_at,
            "refund_due_at": self.refund_due_at,
            "postage_paid": self.postage_paid,
        }


@dataclass(frozen=True)
class OrderFacts:
    order: Order
    refunded: int  # minor units paid back on the order so far, every kind of refund
    returns: dict[str, ReturnFacts] = field(default_factory=dict)
    refunds: dict[str, int] = field(default_factory=dict)  # refund id -> minor units (a chargeback's evidence)

    @property
    def refundable(self) -> int:
        """What is still refundable: what the buyer paid (the order, and the return postage they paid
        on returns that came back, as the refunds service's cap counts it) less what was refunded."""
        postage = sum(seen.postage_paid for seen in self.returns.values())
        return max(self.order.total_paid() + postage - self.refunded, 0)

    @property
    def payment_refunded(self) -> bool:
        """Everything paid for the order itself was paid back (the return postage aside)."""
        return self.refunded >= self.order.total_paid()


def _facts(doc: dict[str, Any]) -> OrderFacts | None:
    if "order" not in doc:
        return None  # a refund or return of it came first
    refunded_returns = doc.get("refunded_returns", {})
    returns = {
        return_id: ReturnFacts(
            return_id=return_id,
            status=ReturnStatus(seen["status"]),
            version=seen["version"],
            in_policy=seen["in_policy"],
            response_due_at=seen["response_due_at"],
            refund_due_at=seen.get("refund_due_at"),
            postage_paid=seen.get("postage_paid", 0),
            # Facts stored before may hold more (`rejected_invalid`, no longer a rule): not read.
            refunded=return_id in refunded_returns,
        )
        for return_id, seen in doc.get("returns", {}).items()
    }
    return OrderFacts(
        Order.model_validate(doc["order"], context=STORED),
        doc.get("refunded", 0),
        returns,
        dict(doc.get("refunds", {})),
    )


class OrderBook:
    """The `order_facts` collection: one document per order id.

    Every event's fact is one conditional upsert; those handled at once go out in one bulk write
    (shared/upserts.py). An upsert that collides on `_id` is tried again without upserting: the
    document exists (its condition failed: the fact is there already, or another fact of the order
    created it meanwhile, when the condition now decides)."""

    def __init__(self, collection: AsyncIOMotorCollection) -> None:
        self.collection = collection
        self._upserts = UpsertBatcher(collection)

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("payment_reference", 1)])

    async def save_order(self, order: Order) -> None:
        """Keep the first snapshot of a delivered order (a redelivery changes nothing)."""
        await self._upserts.upsert(
            {"_id": order.order_id, "order": {"$exists": False}},
            {"$set": {"order": order.model_dump(mode="json"), "payment_reference": order.payment.reference}},
        )

    async def note_refund(self, refund: Refund) -> None:
        """Count an issued refund once (by its id) toward what the order had refunded, and note the
        return it paid for, if any (that return is no longer unpaid)."""
        paid: dict[str, Any] = {f"refunds.{refund.refund_id}": refund.amount.amount}
        if refund.return_id is not None:
            paid[f"refunded_returns.{refund.return_id}"] = refund.refund_id
        await self._upserts.upsert(
            {"_id": refund.order_id, f"refunds.{refund.refund_id}": {"$exists": False}},
            {"$set": paid, "$inc": {"refunded": refund.amount.amount}},
        )

    async def note_return(self, ret: Return) -> None:
        """Keep the newest version seen of one of the order's returns."""
        version = f"returns.{ret.return_id}.version"
        await self._upserts.upsert(
            {"_id": ret.order_id, "$or": [{version: {"$exists": False}}, {version: {"$lt": ret.version}}]},
            {"$set": {f"returns.{ret.return_id}": ReturnFacts.of(ret).fields()}},
        )

    async def get(self, order_id: str) -> OrderFacts | None:
        doc = await self.collection.find_one({"_id": order_id})
        return _facts(doc) if doc else None

    async def by_payment(self, reference: str) -> OrderFacts | None:
        """The order paid with this gateway reference (a charge or PaymentIntent id)."""
        doc = await self.collection.find_one({"payment_reference": reference})
        return _facts(doc) if doc else None
