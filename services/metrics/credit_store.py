"""Store-credit facts in MongoDB: one per `store_credit.*` entry, read for the period's reports.

Written as MetricsStore writes its other facts (one conditional upsert per event): an entry never
changes, so a copy (same `entry_id`, same `at`) matches the stored fact and changes nothing.
Every filter is in shared/query_shapes/ with its index.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from motor.motor_asyncio import AsyncIOMotorCollection, AsyncIOMotorDatabase
from pymongo import ASCENDING

from services.metrics.dispute_store import Record
from services.metrics.figures import Period
from services.metrics.resolution_facts import StoreCreditFact


class StoreCreditFacts:
    def __init__(self, db: AsyncIOMotorDatabase, record: Record) -> None:
        self.entries: AsyncIOMotorCollection = db["store_credit_facts"]
        self._record = record

    async def ensure_indexes(self) -> None:
        await self.entries.create_index([("at", ASCENDING)])
        await self.entries.create_index([("seller_id", ASCENDING), ("at", ASCENDING)])

    async def record(self, fact: StoreCreditFact) -> Any:
        # An entry is written once by the refunds service: an equal `at` is the same entry, a no-op.
        return await self._record(self.entries, {"_id": fact.entry_id, **asdict(fact)}, "at", True)

    async def in_period(self, period: Period, seller_id: str | None = None) -> list[StoreCreditFact]:
        query: dict[str, Any] = {"at": {"$gte": period.start, "$lt": period.end}}
        if seller_id is not None:
            query["seller_id"] = seller_id
        return [_fact(doc) async for doc in self.entries.find(query)]


def _fact(doc: dict[str, Any]) -> StoreCreditFact:
    return StoreCreditFact(**{k: v for k, v in doc.items() if k != "_id"})
