"""The facts of the order defect rate in MongoDB: claims, chargebacks, seller feedback, expired orders.

Written as MetricsStore writes its other facts (`Record`: one conditional upsert per event, kept
only over an older version), read for reports only: a seller's window by its orders' ids, a
period's totals by `last_event_at`. Every filter is in shared/query_shapes/ with its index.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from motor.motor_asyncio import AsyncIOMotorCollection, AsyncIOMotorDatabase
from pymongo import ASCENDING

from services.metrics.dispute_facts import (
    ChargebackFact,
    ClaimFact,
    ExpiredFact,
    FeedbackFact,
    from_document,
    to_document,
)
from services.metrics.figures import Period

# (collection, document, version field, whether an equal version is the same state) -> Kept
Record = Callable[[AsyncIOMotorCollection, dict[str, Any], str, bool], Awaitable[Any]]

# Order ids per `$in` query: a big seller's 60 days stay well inside a command's size.
IDS_PER_QUERY = 2000


class DisputeFacts:
    def __init__(self, db: AsyncIOMotorDatabase, record: Record) -> None:
        self.claims: AsyncIOMotorCollection = db["claim_facts"]
        self.chargebacks: AsyncIOMotorCollection = db["chargeback_facts"]
        self.feedback: AsyncIOMotorCollection = db["feedback_facts"]
        self.expired: AsyncIOMotorCollection = db["expired_order_facts"]
        self._record = record

    async def ensure_indexes(self) -> None:
        for collection in (self.claims, self.chargebacks, self.feedback):
            await collection.create_index([("order_id", ASCENDING)])
        for collection in (self.claims, self.chargebacks, self.feedback, self.expired):
            await collection.create_index([("last_event_at", ASCENDING)])
        await self.expired.create_index([("seller_id", ASCENDING), ("expired_at", ASCENDING)])

    # ---- one upsert per event -------------------------------------------------------------
    # Our own aggregates' versions: an equal one is the same state, a no-op. Expired orders come
    # from the order system, ordered by the event's sequence like `order.delivered`.

    async def record_claim(self, fact: ClaimFact) -> Any:
        return await self._record(self.claims, to_document(fact), "version", True)

    async def record_chargeback(self, fact: ChargebackFact) -> Any:
        return await self._record(self.chargebacks, to_document(fact), "version", True)

    async def record_feedback(self, fact: FeedbackFact) -> Any:
        return await self._record(self.feedback, to_document(fact), "version", True)

    async def record_expired(self, fact: ExpiredFact) -> Any:
        return await self._record(self.expired, to_document(fact), "sequence", False)

    # ---- reports --------------------------------------------------------------------------

    async def of_orders(
        self, order_ids: Iterable[str]
    ) -> tuple[list[ClaimFact], list[ChargebackFact], list[FeedbackFact]]:
        """Every claim, chargeback and feedback on these orders."""
        ids = sorted(set(order_ids))
        claims: list[ClaimFact] = []
        chargebacks: list[ChargebackFact] = []
        feedback: list[FeedbackFact] = []
        for start in range(0, len(ids), IDS_PER_QUERY):
            query = {"order_id": {"$in": ids[start : start + IDS_PER_QUERY]}}
            claims += [from_document(ClaimFact, doc) async for doc in self.claims.find(query)]
            chargebacks += [from_document(ChargebackFact, doc) async for doc in self.chargebacks.find(query)]
            feedback += [from_document(FeedbackFact, doc) async for doc in self.feedback.find(query)]
        return claims, chargebacks, feedback

    async def expired_of(self, seller_id: str, period: Period) -> list[ExpiredFact]:
        query = {"seller_id": seller_id, "expired_at": {"$gte": period.start, "$lt": period.end}}
        return [from_document(ExpiredFact, doc) async for doc in self.expired.find(query)]

    async def touching(
        self, period: Period
    ) -> tuple[list[ClaimFact], list[ChargebackFact], list[FeedbackFact], list[ExpiredFact]]:
        """Every fact with a step in the period (it began before the end, its last step is not before the start)."""
        query = {"first_at": {"$lt": period.end}, "last_event_at": {"$gte": period.start}}
        return (
            [from_document(ClaimFact, doc) for doc in await _all(self.claims, query)],
            [from_document(ChargebackFact, doc) for doc in await _all(self.chargebacks, query)],
            [from_document(FeedbackFact, doc) for doc in await _all(self.feedback, query)],
            [from_document(ExpiredFact, doc) for doc in await _all(self.expired, query)],
        )


async def _all(collection: AsyncIOMotorCollection, query: dict[str, Any]) -> list[dict[str, Any]]:
    return [doc async for doc in collection.find(query)]
