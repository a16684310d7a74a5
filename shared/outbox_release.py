"""The outbox relay's releases on the direct path, written together: one or two commands per batch.

After publishing what a commit handed over (shared.outbox), the relay empties that document's
outbox. One document alone costs one conditional write (the outbox holds exactly the published
events: emptied, `outbox_pending` and the lease cleared; otherwise a second write pulls just the
published ones). Under load many documents of a collection
are released at about the same moment; written one by one, that is one command per state change,
the largest share of the relay's cost. So releases queue per collection while a write for the same
collection is in flight (group commit, like a journal's fsync) and the next write takes them all:

1. `update_many({_id: {$in: ids}}, {$pull: {outbox: {id: {$in: published}}}})`: the published
   events leave their documents (ids are unique, so a document loses only its own);
2. `update_many({_id: {$in: ids}, outbox: {$size: 0}}, {$unset: pending, lease, owner, failures})`;
3. only when fewer documents matched than were released (newer events arrived meanwhile): which of
   them still hold events, by `_id` again. Those answer False, as the single write's mismatch does:
   the published events are out of the outbox either way, the newer ones are the relay's to send
   (shared.outbox).

Each waiting release holds its document's in-process lock until its batch is written, so events of
one aggregate stay in order; a failed write fails every release of that batch (each is retried).
"""

from __future__ import annotations

import asyncio
from typing import Any

OUTBOX, PENDING, LEASE, OWNER, FAILURES = (
    "outbox",
    "outbox_pending",
    "outbox_lease_until",
    "outbox_lease_owner",
    "outbox_failures",
)
_CLEARED = {"$unset": {PENDING: "", LEASE: "", OWNER: "", FAILURES: ""}}


class ReleaseBatcher:
    """Releases of one collection's documents; `release` answers whether the outbox is now empty."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.waiting: dict[Any, tuple[list[str], asyncio.Future[bool]]] = {}
        self.writer: asyncio.Task[None] | None = None
        self.batches = self.documents = 0  # written so far (for tests and curiosity)

    async def release(self, doc_id: Any, published: list[str]) -> bool:
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if doc_id in self.waiting:  # never while the caller holds the document's lock; be safe anyway
            raise RuntimeError(f"a release of {doc_id!r} is already waiting")
        self.waiting[doc_id] = (published, answer)
        if self.writer is None:
            self.writer = asyncio.create_task(self._write_while_waiting())
        return await answer

    async def _write_while_waiting(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, {}
                try:
                    emptied = await self._write(batch)
                except Exception as exc:  # noqa: BLE001 - each caller handles its own failure
                    for _, answer in batch.values():
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                for doc_id, (_, answer) in batch.items():
                    if not answer.done():
                        answer.set_result(doc_id in emptied)
        finally:
            self.writer = None

    async def _write(self, batch: dict[Any, tuple[list[str], asyncio.Future[bool]]]) -> set[Any]:
        self.batches, self.documents = self.batches + 1, self.documents + len(batch)
        if len(batch) == 1:
            [(doc_id, (published, _))] = batch.items()
            result = await self.collection.update_one(
                {"_id": doc_id, OUTBOX: {"$size": len(published)}, f"{OUTBOX}.id": {"$all": published}},
                {"$set": {OUTBOX: []}, **_CLEARED},
            )
            if result.matched_count:
                return {doc_id}
            await self.collection.update_one({"_id": doc_id}, {"$pull": {OUTBOX: {"id": {"$in": published}}}})
            return set()
        ids = list(batch)
        published = [event_id for events, _ in batch.values() for event_id in events]
        await self.collection.update_many({"_id": {"$in": ids}}, {"$pull": {OUTBOX: {"id": {"$in": published}}}})
        result = await self.collection.update_many({"_id": {"$in": ids}, OUTBOX: {"$size": 0}}, _CLEARED)
        if result.matched_count == len(ids):
            return set(ids)
        left = {doc["_id"] async for doc in self.collection.find({"_id": {"$in": ids}, PENDING: True}, {"_id": 1})}
        return set(ids) - left
