"""The outbox relay's releases on the direct path, written together: one or two commands per batch.

After publishing what a commit handed over (shared.outbox), the relay empties that document's
outbox. One document alone costs one conditional write (the outbox holds exactly the published
events: emptied, `outbox_pending` and the lease cleared; otherwise a second write pulls just the
published ones). Under load many documents of a collection
are released at about the same moment; written one by one, that is one command per state change,
the largest share of the relay's cost. So releases queue per collection while a write for the same
collection is in flight (group commit: shared/group_write.py) and the next write takes them all:

1. `update_many({_id: {$in: ids}}, {$pull: {outbox: {id: {$in: published}}}})`: the published
   events leave their documents (ids are unique, so a document loses only its own);
2. `update_many({_id: {$in: ids}, outbox: {$size: 0}}, {$unset: pending, lease, owner, failures})`;
3. only when fewer documents matched than were released (newer events arrived meanwhile): which of
   them still hold events, by `_id` again. Those answer False, as the single write's mismatch does:
   the published events are out of the outbox either way, the newer ones are the relay's to send
   (shared.outbox).

A release is queued before its document's in-process lock is let go, so a document's releases are
written in the order its events were published; the document's next events may be published while
an earlier release waits (each was confirmed first). A failed write fails every release of that
batch (each is retried).
"""

from __future__ import annotations

import asyncio
from typing import Any

from shared.group_write import GroupWriter
from shared.outbox_writes import FAILURES, LEASE, OUTBOX, OWNER, PENDING

_CLEARED = {"$unset": {PENDING: "", LEASE: "", OWNER: "", FAILURES: ""}}


class ReleaseBatcher:
    """Releases of one collection's documents; `release` answers whether the outbox is now empty."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.group: GroupWriter[tuple[Any, list[str]], bool] = GroupWriter(self._write)

    def release(self, doc_id: Any, published: list[str]) -> asyncio.Future[bool]:
        """Queue the release now: a document's releases are written in the order they were queued."""
        return self.group.enqueue((doc_id, published))

    async def _write(self, batch: list[tuple[Any, list[str]]]) -> list[bool]:
        if len(batch) == 1:
            [(doc_id, published)] = batch
            result = await self.collection.update_one(
                {"_id": doc_id, OUTBOX: {"$size": len(published)}, f"{OUTBOX}.id": {"$all": published}},
                {"$set": {OUTBOX: []}, **_CLEARED},
            )
            if result.matched_count:
                return [True]
            await self.collection.update_one({"_id": doc_id}, {"$pull": {OUTBOX: {"id": {"$in": published}}}})
            return [False]
        ids = [doc_id for doc_id, _ in batch]
        every = [event_id for _, events in batch for event_id in events]
        await self.collection.update_many({"_id": {"$in": ids}}, {"$pull": {OUTBOX: {"id": {"$in": every}}}})
        result = await self.collection.update_many({"_id": {"$in": ids}, OUTBOX: {"$size": 0}}, _CLEARED)
        if result.matched_count == len(set(ids)):  # a document's two releases may share a batch
            return [True] * len(ids)
        left = {doc["_id"] async for doc in self.collection.find({"_id": {"$in": ids}, PENDING: True}, {"_id": 1})}
        return [doc_id not in left for doc_id in ids]
