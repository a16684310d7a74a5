"""Conditional upserts of one collection written together: one bulk write for the ones that wait.

Event handlers keep facts with one conditional upsert each (metrics' facts, disputes' order facts):
the filter names the document by `_id` and says when the change applies (an older version stored,
a refund not counted yet), and the upsert creates the document when there is none. Under load many
events are handled at once (the bus's prefetch), each costing a command; so upserts queue per
collection while a write of that collection is in flight (shared/group_write.py) and the next write
takes them all as one unordered bulk write.

Each answer stays what a single upsert would say. An upserted document is the first (`first`); a
matched one had the change applied (`newer`): so a filter must match only documents the update
really changes (a strict version, a refund id not yet there), as a bulk result gives no count per
operation. One that collided on `_id` (the condition failed on a stored document, or another write
of the same batch or another replica created it meanwhile) is decided again by `single`, as a
single upsert's DuplicateKeyError is. Unordered is safe because each filter states its own
condition: operations on one document commute.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError
from pymongo.results import UpdateResult

from shared.group_write import GroupWriter
from shared.mongo import DUPLICATE_KEY

# (filter, update) -> how it went, decided alone: what the store does for one upsert.
Single = Callable[[dict[str, Any], dict[str, Any]], Awaitable[Any]]


async def upsert_one(collection: Any, current: dict[str, Any], update: dict[str, Any]) -> UpdateResult:
    """One conditional upsert. On a duplicate key (the condition failed on a stored document, or
    another writer created it between this upsert's miss and its insert) once more without the
    upsert: the document exists now, and the condition alone decides."""
    try:
        result: UpdateResult = await collection.update_one(current, update, upsert=True)
    except DuplicateKeyError:
        result = await collection.update_one(current, update)
    return result


class UpsertBatcher:
    """Conditional upserts of one collection; `upsert` answers as `single` would (by default
    `upsert_one`, whose answer a caller that only needs the write ignores)."""

    def __init__(self, collection: Any, single: Single | None = None, *, first: Any = None, newer: Any = None) -> None:
        self.collection = collection
        self.single: Single = single or (lambda current, update: upsert_one(collection, current, update))
        self.first, self.newer = first, newer  # the answers for an upserted and a replaced fact
        self.group: GroupWriter[tuple[dict[str, Any], dict[str, Any]], Any] = GroupWriter(self._write)

    async def upsert(self, current: dict[str, Any], update: dict[str, Any]) -> Any:
        """`update` (operators: `$set`, `$inc`, ...) where `current` matches, else create the document."""
        return await self.group.submit((current, update))

    async def _write(self, batch: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[Any]:
        if len(batch) == 1:
            current, update = batch[0]
            return [await self.single(current, update)]
        operations = [UpdateOne(current, update, upsert=True) for current, update in batch]
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
        for index, (current, update) in enumerate(batch):
            if index in collided:
                answers.append(await self.single(current, update))
            else:
                answers.append(self.first if index in upserted else self.newer)
        return answers
