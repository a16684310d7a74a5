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
from pymongo.errors import BulkWriteError

from shared.group_write import GroupWriter

DUPLICATE_KEY = 11000

# (filter, update) -> how it went, decided alone: what the store does for one upsert.
Single = Callable[[dict[str, Any], dict[str, Any]], Awaitable[Any]]


class UpsertBatcher:
    """Conditional upserts of one collection; `upsert` answers as `single` would."""

    def __init__(self, collection: Any, single: Single, *, first: Any, newer: Any) -> None:
        self.collection, self.single = collection, single
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
