"""Fact upserts of one collection written together: one bulk write for the ones that wait.

A fact whose version is compared strictly (`$lt`: emails by their time, deliveries by the order
system's sequence) is written by one conditional upsert (services/metrics/store.py). Under load
many such events are handled at once (the bus's prefetch), each costing a command; so upserts
queue per collection while a write of that collection is in flight (shared/group_write.py) and the
next write takes them all as one unordered bulk write. Each answer stays exact, because the filter is
strict: an upserted document is the first of its fact, a matched one was older and is replaced
(its version differs, so it is modified), and one that collided on `_id` (a version at least as
new is stored, or another replica inserted meanwhile) is decided again by itself, as a single
upsert's DuplicateKeyError is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from shared.group_write import GroupWriter

DUPLICATE_KEY = 11000

# (filter, fields) -> how it went, decided alone: what the store does for one upsert.
Single = Callable[[dict[str, Any], dict[str, Any]], Awaitable[Any]]


class UpsertBatcher:
    """Strict conditional upserts of one collection; `upsert` answers as `single` would."""

    def __init__(self, collection: Any, single: Single, *, first: Any, newer: Any) -> None:
        self.collection, self.single = collection, single
        self.first, self.newer = first, newer  # the answers for an upserted and a replaced fact
        self.group: GroupWriter[tuple[dict[str, Any], dict[str, Any]], Any] = GroupWriter(self._write)

    async def upsert(self, current: dict[str, Any], fields: dict[str, Any]) -> Any:
        return await self.group.submit((current, fields))

    async def _write(self, batch: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[Any]:
        if len(batch) == 1:
            current, fields = batch[0]
            return [await self.single(current, fields)]
        operations = [UpdateOne(current, {"$set": fields}, upsert=True) for current, fields in batch]
        collided: set[int] = set()
        try:
            result = await self.collection.bulk_write(operations, ordered=False)
            upserted = set(result.upserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            collided = {error["index"] for error in errors}
            upserted = {entry["index"] for entry in exc.details.get("upserted", [])}
        answers = []
        for index, (current, fields) in enumerate(batch):
            if index in collided:
                answers.append(await self.single(current, fields))
            else:
                answers.append(self.first if index in upserted else self.newer)
        return answers
