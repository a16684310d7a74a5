"""The refunds service's MongoDB: refunds (with their outbox), order copies, ledgers.

Every write is one conditional single-document update: no transactions are needed or used. The
order copy (`orders`, by order id) also holds the newest closed version of each of its returns, so
one read by `_id` tells a refund both the order and whether its return was closed since.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from motor.motor_asyncio import AsyncIOMotorDatabase
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.refunds.domain import return_refund_id
from services.refunds.order_ledger import OrderLedgers
from services.refunds.schemas import RefundFilter
from shared.events import CloudEvent
from shared.models import STORED, Order, Payment, Refund, RefundStatus, Return
from shared.outbox_writes import Claims, commit_events, outbox_fields
from shared.pagination import Page, make_page, page_filter, page_sort

_DATES = ("created_at", "updated_at", "received_at", "due_at", "issued_at")
# What the platform or a seller may change on a refund; restored when a refund is reverted.
REVERTIBLE = ("status", "breakdown", "amount", "store_credit_bonus", "actor", "automatic", "failure_reason")
LEASE = "pay_lease_until"
# A lease is operational (system) time; "free to claim" is the epoch, never a business-clock now.
UNLEASED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RefundRecord:
    """A refund and what only this service needs to pay it."""

    refund: Refund
    payment: Payment
    idempotency_key: str
    key_round: int
    previous: dict[str, Any] | None
    # The end of the pay lease as stored when it was taken: the payer's fencing token (a later claim
    # can only set a later end), so a payer that lost its lease can no longer write.
    lease_until: datetime | None = None


def refund_fields(refund: Refund) -> dict[str, Any]:
    fields = refund.model_dump(mode="json")
    for name in _DATES:  # real dates, so deadlines can be range-queried
        fields[name] = getattr(refund, name)
    return fields


def refund_criteria(wanted: RefundFilter) -> dict[str, Any]:
    """The MongoDB filter of a list of refunds: each field that is set, all of them at once."""
    fields = (
        ("return_id", wanted.return_id),
        ("order_id", wanted.order_id),
        ("buyer.id", wanted.buyer_id),
        ("seller.id", wanted.seller_id),
        ("status", wanted.status.value if wanted.status else None),
    )
    return {name: value for name, value in fields if value is not None}


def _aware(moment: datetime) -> datetime:
    """pymongo returns naive UTC datetimes unless told otherwise."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _record(doc: dict[str, Any]) -> RefundRecord:
    return RefundRecord(
        refund=Refund.model_validate(doc),
        payment=Payment.model_validate(doc["payment"]),
        idempotency_key=doc["idempotency_key"],
        key_round=doc.get("key_round", 0),
        previous=doc.get("previous"),
        lease_until=_aware(doc[LEASE]) if isinstance(doc.get(LEASE), datetime) else None,
    )


class RefundStore:
    def __init__(self, db: AsyncIOMotorDatabase) -> None:
        self.db = db
        self.refunds = db["refunds"]
        self.orders = db["orders"]
        self.ledgers = OrderLedgers(db["order_ledgers"])
        # The relay that publishes the refunds' events (the wiring sets it): a commit claims the
        # refund for it. Unset: commits claim nothing, and the relay is woken by id.
        self.outbox_relay: Claims | None = None

    async def ensure_indexes(self) -> None:
        for keys in (
            ["status", "due_at"],
            ["status", LEASE],
            ["return_id", "created_at"],
            ["order_id", "created_at"],
            ["seller.id", "created_at"],
            ["buyer.id", "created_at"],
            ["created_at"],
        ):
            await self.refunds.create_index([(key, 1) for key in keys])

    # ---- orders and returns seen ------------------------------------------------------------

    async def save_order(self, order: Order) -> None:
        """Keep the first snapshot of a delivered order and open its ledger (redeliveries change nothing)."""
        # The document may already exist without the order: a `return.closed` of it came first.
        try:
            await self.orders.update_one(
                {"_id": order.order_id, "order": {"$exists": False}},
                {"$set": {"order": order.model_dump(mode="json")}},
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # the snapshot is there already
        await self.ledgers.open(order.order_id, order.currency, order.total_paid())

    async def order(self, order_id: str) -> Order | None:
        return (await self.order_and_closed(order_id))[0]

    async def order_and_closed(self, order_id: str) -> tuple[Order | None, dict[str, int]]:
        """The order's copy (None before `order.delivered`) and, per return of it that was closed,
        the version it was closed at."""
        doc = await self.orders.find_one({"_id": order_id}) or {}
        order = Order.model_validate(doc["order"], context=STORED) if "order" in doc else None
        return order, doc.get("closed", {})

    async def note_closed(self, ret: Return) -> None:
        """Remember that a return was closed (its newest closed version): one upsert, idempotent."""
        await self.orders.update_one(
            {"_id": ret.order_id}, {"$max": {f"closed.{ret.return_id}": ret.version}}, upsert=True
        )

    async def received_return(self, return_id: str) -> Return | None:
        """The return as it was received (the state a refund of it is computed from), kept on the
        return's refund: the only refund with this `return_id`, found by its id."""
        doc = await self.refunds.find_one({"_id": return_refund_id(return_id)}, {"source_return": 1})
        return None if doc is None or not doc.get("source_return") else Return.model_validate(doc["source_return"])

    # ---- refunds ----------------------------------------------------------------------------

    async def insert(
        self,
        refund: Refund,
        *,
        payment: Payment,
        idempotency_key: str,
        now: datetime,
        source_return: Return | None = None,
        requested_by: str | None = None,
        events: Sequence[CloudEvent] = (),
        leased_until: datetime | None = None,
    ) -> bool:
        """False when the refund already exists (a duplicate event or a retried request).

        With `leased_until` the new pending refund is created claimed (see `claim`): whoever
        inserted it may pay it without claiming it first.
        """
        doc = {
            "_id": refund.refund_id,
            **refund_fields(refund),
            "payment": payment.model_dump(mode="json"),
            "idempotency_key": idempotency_key,
            "key_round": 0,
            LEASE: leased_until or UNLEASED,
            "requested_by": requested_by,
            "source_return": None if source_return is None else source_return.model_dump(mode="json"),
            **outbox_fields(events),
        }
        try:
            await self.refunds.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, refund_id: str) -> RefundRecord | None:
        doc = await self.refunds.find_one({"_id": refund_id})
        return None if doc is None else _record(doc)

    async def claim(self, refund_id: str, now: datetime, until: datetime) -> RefundRecord | None:
        """Take the right to pay a pending refund; None while another replica holds it."""
        doc = await self.refunds.find_one_and_update(
            {"_id": refund_id, "status": RefundStatus.PENDING.value, LEASE: {"$lte": now}},
            {"$set": {LEASE: until}},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _record(doc)

    async def extend_lease(self, refund: Refund, held: datetime | None, until: datetime) -> bool:
        """Record a gateway attempt (and keep the lease); False when the refund changed meanwhile or
        its lease is no longer the one `held` (another payer claimed it after it ran out)."""
        result = await self.refunds.update_one(
            {"_id": refund.refund_id, "version": refund.version, "status": RefundStatus.PENDING.value}
            | ({} if held is None else {LEASE: held}),
            {"$set": {LEASE: until, "attempts": refund.attempts}},
        )
        return result.matched_count == 1

    async def save(self, version: int, refund: Refund, *, extra: dict[str, Any] | None = None) -> bool:
        """Write the refund's new state (no events) in one update, if it is still at `version`."""
        return await self.commit(version, refund, extra=extra) is not None

    async def commit(
        self,
        version: int,
        refund: Refund,
        *,
        events: Sequence[CloudEvent] = (),
        extra: dict[str, Any] | None = None,
        lease: datetime | None = None,
    ) -> dict[str, Any] | None:
        """Write the refund's new state and its events in one update, if it is still at `version`:
        None when it is not; else how to wake the outbox relay (`shared.outbox_writes.commit_events`:
        claimed for this replica's relay unless another replica's relay holds the refund)."""
        update = {"$set": {**refund_fields(refund), **(extra or {})}}
        expected: dict[str, Any] = {"_id": refund.refund_id, "version": version}
        if lease is not None:  # a payer's outcome: only while its lease is still the one it took
            expected[LEASE] = lease
        return await commit_events(self.refunds, expected, update, events, self.outbox_relay)

    async def delete_unpaid(self, refund: Refund) -> bool:
        """Drop a direct refund created by a request that was then refused (nothing was paid)."""
        result = await self.refunds.delete_one(
            {"_id": refund.refund_id, "version": refund.version, "status": RefundStatus.PENDING.value}
        )
        return result.deleted_count == 1

    async def overdue(self, now: datetime, limit: int) -> list[RefundRecord]:
        cursor = self.refunds.find({"status": RefundStatus.DUE.value, "due_at": {"$lte": now}}).limit(limit)
        return [_record(doc) async for doc in cursor]

    async def stalled(self, until: datetime, limit: int) -> list[tuple[str, datetime]]:
        """Pending refunds whose pay lease ends by `until` (their payer may have crashed): (id, lease end)."""
        cursor = self.refunds.find(
            {"status": RefundStatus.PENDING.value, LEASE: {"$lte": until}}, {"_id": 1, LEASE: 1}
        ).limit(limit)
        return [(doc["_id"], _aware(doc[LEASE])) async for doc in cursor]

    async def page(self, wanted: RefundFilter, cursor: str | None, limit: int) -> Page[Refund]:
        query = {**refund_criteria(wanted), **page_filter(cursor)}
        docs = [doc async for doc in self.refunds.find(query).sort(page_sort()).limit(limit + 1)]
        return make_page(docs, limit, Refund.model_validate)
