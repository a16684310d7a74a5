"""The only module that knows MongoDB: facts (one per return, refund, delivered order) and buyers.

A fact is replaced only by a strictly newer version of its aggregate, so duplicates and late
arrivals change nothing. Buyer documents hold the flag state and its version; a state change and
its `buyer.*` event are one conditional write (outbox).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from motor.motor_asyncio import AsyncIOMotorCollection, AsyncIOMotorDatabase
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from services.metrics.abuse import Standing
from services.metrics.facts import (
    DeliveryFact,
    RefundFact,
    ReturnFact,
    delivery_from_document,
    refund_from_document,
    return_from_document,
    to_document,
)
from services.metrics.figures import Period
from shared.events import CloudEvent
from shared.models import Notification
from shared.outbox import outbox_fields, with_outbox

# How many times a buyer's flag write is retried after losing a race with another replica.
FLAG_WRITE_ATTEMPTS = 10


class FlagWriteContention(RuntimeError):
    """Every attempt lost a race; the bus retries the event later."""


@dataclass(frozen=True)
class FlagState:
    buyer_id: str
    flagged: bool
    version: int
    reason: str
    since: datetime | None


class KeyedLock:
    """One writer per key inside this process. Conditional updates already make replicas safe; this
    spares the retries when several events of one aggregate arrive together."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class MetricsStore:
    def __init__(self, db: AsyncIOMotorDatabase) -> None:
        self.db = db
        self.returns: AsyncIOMotorCollection = db["return_facts"]
        self.refunds: AsyncIOMotorCollection = db["refund_facts"]
        self.deliveries: AsyncIOMotorCollection = db["delivery_facts"]
        self.notifications: AsyncIOMotorCollection = db["notification_facts"]
        self.buyers: AsyncIOMotorCollection = db["buyers"]
        self.inbox: AsyncIOMotorCollection = db["inbox"]
        self._writing = KeyedLock()

    async def ensure_indexes(self) -> None:
        await self.returns.create_index([("seller_id", ASCENDING), ("created_at", ASCENDING)])
        await self.returns.create_index([("buyer_id", ASCENDING), ("created_at", ASCENDING)])
        await self.returns.create_index([("last_event_at", ASCENDING)])
        await self.refunds.create_index([("seller_id", ASCENDING), ("issued_at", ASCENDING)])
        await self.refunds.create_index([("issued_at", ASCENDING)])
        await self.refunds.create_index([("return_id", ASCENDING)])
        await self.deliveries.create_index([("seller_id", ASCENDING), ("delivered_at", ASCENDING)])
        await self.deliveries.create_index([("buyer_id", ASCENDING), ("delivered_at", ASCENDING)])
        await self.notifications.create_index([("at", ASCENDING)])
        await self.buyers.create_index([("flagged", ASCENDING)])
        await self.buyers.create_index([("review_at", ASCENDING)])

    # ---- facts ----------------------------------------------------------------------------

    async def _record(self, collection: AsyncIOMotorCollection, doc: dict[str, Any], version_field: str) -> bool:
        """Keep `doc` unless a version at least as new is stored. True when it was kept."""
        async with self._writing.hold(f"{collection.name}:{doc['_id']}"):
            return await self._record_unlocked(collection, doc, version_field)

    async def _record_unlocked(
        self, collection: AsyncIOMotorCollection, doc: dict[str, Any], version_field: str
    ) -> bool:
        try:
            await collection.insert_one(doc)
            return True
        except DuplicateKeyError:
            pass
        fields = {k: v for k, v in doc.items() if k != "_id"}
        result = await collection.update_one(
            {"_id": doc["_id"], version_field: {"$lt": doc[version_field]}}, {"$set": fields}
        )
        return result.matched_count == 1

    async def record_return(self, fact: ReturnFact) -> bool:
        return await self._record(self.returns, to_document(fact), "version")

    async def record_refund(self, fact: RefundFact) -> bool:
        return await self._record(self.refunds, to_document(fact), "version")

    async def record_delivery(self, fact: DeliveryFact) -> bool:
        return await self._record(self.deliveries, to_document(fact), "sequence")

    async def record_notification(self, note: Notification) -> bool:
        """One fact per email; a later outcome (a resend that succeeded) replaces an earlier one."""
        doc = {
            "_id": note.notification_id,
            "status": note.status,
            "template": note.template,
            "recipient_role": note.recipient_role,
            "at": note.at,
        }
        return await self._record(self.notifications, doc, "at")

    async def email_outcomes(self, period: Period) -> dict[str, int]:
        outcomes: dict[str, int] = defaultdict(int)
        async for doc in self.notifications.find({"at": {"$gte": period.start, "$lt": period.end}}, {"status": 1}):
            outcomes[doc["status"]] += 1
        return outcomes

    async def returns_touching(self, period: Period, seller_id: str | None = None) -> list[ReturnFact]:
        """Returns requested before the period's end with any transition at or after its start."""
        query: dict[str, Any] = {"created_at": {"$lt": period.end}, "last_event_at": {"$gte": period.start}}
        if seller_id is not None:
            query["seller_id"] = seller_id
        return [return_from_document(doc) async for doc in self.returns.find(query)]

    async def refunds_for(
        self, period: Period, return_ids: list[str], seller_id: str | None = None
    ) -> list[RefundFact]:
        """Refunds issued in the period, plus any refund of the given returns."""
        query: dict[str, Any] = {"issued_at": {"$gte": period.start, "$lt": period.end}}
        if seller_id is not None:
            query["seller_id"] = seller_id
        found = {doc["_id"]: doc async for doc in self.refunds.find(query)}
        if return_ids:
            found |= {doc["_id"]: doc async for doc in self.refunds.find({"return_id": {"$in": return_ids}})}
        return [refund_from_document(doc) for doc in found.values()]

    async def deliveries_in(self, period: Period, seller_id: str) -> list[DeliveryFact]:
        query = {"seller_id": seller_id, "delivered_at": {"$gte": period.start, "$lt": period.end}}
        return [delivery_from_document(doc) async for doc in self.deliveries.find(query)]

    async def buyer_facts(self, buyer_id: str, since: datetime) -> tuple[list[ReturnFact], list[DeliveryFact]]:
        returns = [
            return_from_document(doc)
            async for doc in self.returns.find({"buyer_id": buyer_id, "created_at": {"$gte": since}})
        ]
        deliveries = [
            delivery_from_document(doc)
            async for doc in self.deliveries.find({"buyer_id": buyer_id, "delivered_at": {"$gte": since}})
        ]
        return returns, deliveries

    async def buyers_with_facts(self) -> set[str]:
        ids: set[str] = set()
        for collection in (self.returns, self.deliveries):
            ids |= {doc["buyer_id"] async for doc in collection.find({}, {"buyer_id": 1})}
        return ids | {doc["_id"] async for doc in self.buyers.find({}, {"_id": 1})}

    # ---- buyers ---------------------------------------------------------------------------

    async def flag_state(self, buyer_id: str) -> FlagState | None:
        doc = await self.buyers.find_one({"_id": buyer_id})
        return _flag_state(doc) if doc else None

    async def flagged_buyers(self) -> int:
        return await self.buyers.count_documents({"flagged": True})

    async def buyers_due_for_review(self, now: datetime) -> list[str]:
        return [doc["_id"] async for doc in self.buyers.find({"review_at": {"$lt": now}}, {"_id": 1})]

    async def settle_flag(
        self,
        buyer_id: str,
        assess: Callable[[list[ReturnFact], list[DeliveryFact]], Standing],
        since: datetime,
        event: Callable[[Standing, int], CloudEvent],
    ) -> tuple[Standing, bool]:
        """Assess the buyer and store the outcome; a changed flag also queues its event.

        The facts are read AFTER the buyer document and the write is conditional on that
        document's version, so a write based on an older view of the facts can never win.
        Returns the standing and whether the flag changed.
        """
        async with self._writing.hold(f"buyers:{buyer_id}"):
            return await self._settle_flag(buyer_id, assess, since, event)

    async def _settle_flag(
        self,
        buyer_id: str,
        assess: Callable[[list[ReturnFact], list[DeliveryFact]], Standing],
        since: datetime,
        event: Callable[[Standing, int], CloudEvent],
    ) -> tuple[Standing, bool]:
        for _ in range(FLAG_WRITE_ATTEMPTS):
            doc = await self.buyers.find_one({"_id": buyer_id}, {"flagged": 1, "version": 1})
            standing = assess(*await self.buyer_facts(buyer_id, since))
            figures = {
                "returns": standing.returns,
                "orders": standing.orders,
                "returned_orders": standing.returned_orders,
                "reason": standing.reason,
                "assessed_at": standing.assessed_at,
            }
            if doc is None:
                changed = standing.flagged
                version = 1 if changed else 0
                fields = {
                    "flagged": changed,
                    "version": version,
                    "since": standing.assessed_at if changed else None,
                    **figures,
                }
                if standing.review_at is not None:
                    fields["review_at"] = standing.review_at
                events = [event(standing, version)] if changed else []
                try:
                    await self.buyers.insert_one({"_id": buyer_id, **fields, **outbox_fields(events)})
                    return standing, changed
                except DuplicateKeyError:
                    continue  # another replica created it: assess again against its state
            current = {"_id": buyer_id, "version": doc["version"]}
            if doc["flagged"] == standing.flagged:
                result = await self.buyers.update_one(current, _assessment(figures, standing.review_at))
                if result.matched_count:
                    return standing, False
                continue
            version = doc["version"] + 1
            state = {"flagged": standing.flagged, "version": version, "since": standing.assessed_at, **figures}
            update = with_outbox(_assessment(state, standing.review_at), [event(standing, version)])
            if (await self.buyers.update_one(current, update)).matched_count:
                return standing, True
        raise FlagWriteContention(buyer_id)


def _assessment(fields: dict[str, Any], review_at: datetime | None) -> dict[str, Any]:
    if review_at is None:
        return {"$set": fields, "$unset": {"review_at": ""}}
    return {"$set": {**fields, "review_at": review_at}}


def _flag_state(doc: dict[str, Any]) -> FlagState:
    return FlagState(
        buyer_id=doc["_id"],
        flagged=doc["flagged"],
        version=doc["version"],
        reason=doc.get("reason", ""),
        since=doc.get("since"),
    )
