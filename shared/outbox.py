"""Transactional outbox without multi-document transactions: events ride in the aggregate's document.

A store writes an aggregate's new events into that document's `outbox` array in the SAME
single-document write as the state change, so both commit or neither does; MongoDB's
single-document atomicity is all this needs. OutboxRelay then publishes them (confirmed, in order)
and removes them. A crash between commit and publish loses nothing: the next relay run publishes.
A crash between publish and removal publishes again: delivery is at least once and consumers
dedupe by event id.

Stores must update such documents with $set/$push (never replace_one with a stale copy, which
would drop pending events) and should call OutboxRelay.wake(doc_id) after the write for low
latency: the relay then publishes that document, found by its `_id`. The query for every pending
document (a scan on the embedded MongoDB-wire server) runs only once per poll interval, and on a
wake() without an id; it finds whatever a wake missed (a crash, a failed publish, another replica).

Fields on the document: outbox [{id, type, envelope}], outbox_pending (true while events wait;
indexed, so finding work is cheap), outbox_lease_until / outbox_lease_owner (one relay at a time
per document), outbox_failures (publish attempts that failed in a row, for back-off).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from pymongo import ReturnDocument

from shared.bus import loggable
from shared.clock import Clock, SystemClock
from shared.events import CloudEvent
from shared.periodic import Periodic, backoff_seconds

log = logging.getLogger(__name__)

OUTBOX, PENDING, LEASE, OWNER, FAILURES = (
    "outbox",
    "outbox_pending",
    "outbox_lease_until",
    "outbox_lease_owner",
    "outbox_failures",
)


def outbox_entries(events: Iterable[CloudEvent], exchange: str | None = None) -> list[dict[str, Any]]:
    """Outbox items; `exchange` sends them somewhere other than the bus's own exchange."""
    target = {"exchange": exchange} if exchange else {}
    return [
        {"id": e.id, "type": e.type, "envelope": e.model_dump(mode="json", exclude_none=True), **target} for e in events
    ]


def outbox_fields(events: Iterable[CloudEvent]) -> dict[str, Any]:
    """Fields to add to a new document: `insert_one({**doc, **outbox_fields(events)})`."""
    entries = outbox_entries(events)
    return {OUTBOX: entries, PENDING: True} if entries else {OUTBOX: []}


def outbox_push(events: Iterable[CloudEvent], exchange: str | None = None) -> dict[str, Any]:
    """Update fragment appending events to an existing document's outbox."""
    entries = outbox_entries(events, exchange)
    if not entries:
        return {}
    return {"$push": {OUTBOX: {"$each": entries}}, "$set": {PENDING: True}}


def with_outbox(update: dict[str, Any], events: Iterable[CloudEvent], exchange: str | None = None) -> dict[str, Any]:
    """`update` (e.g. {"$set": ..., "$inc": ...}) plus the outbox push, as one update document."""
    merged = {op: dict(fields) for op, fields in update.items()}
    for op, fields in outbox_push(events, exchange).items():
        clash = merged.setdefault(op, {}).keys() & fields.keys()
        if clash:
            raise ValueError(f"update already sets outbox field(s) {sorted(clash)}")
        merged[op].update(fields)
    return merged


class Publisher(Protocol):
    """What the relay publishes through: an EventBus, or shared.messaging.Announcer around one."""

    service: str

    async def publish(self, event: CloudEvent, *, exchange: str | None = None) -> None: ...


def _due(now: datetime) -> dict[str, Any]:
    return {"$or": [{LEASE: {"$exists": False}}, {LEASE: {"$lt": now}}]}


class OutboxRelay:
    def __init__(
        self,
        bus: Publisher,
        collections: Sequence[Any],
        *,
        poll_interval: float = 0.5,
        lease_seconds: float = 30.0,
        clock: Clock | None = None,
        batch_size: int = 100,
        concurrency: int = 16,
        max_backoff: float = 60.0,
    ) -> None:
        self.bus, self.collections = bus, list(collections)
        self.poll_interval, self.lease = poll_interval, timedelta(seconds=lease_seconds)
        self.clock = clock or SystemClock()
        self.batch_size, self.max_backoff = batch_size, max_backoff
        self.owner = f"{bus.service}:{uuid.uuid4()}"
        self._slots = asyncio.Semaphore(concurrency)
        self._woken: list[tuple[Any, Any]] = []  # (collection, _id) committed since the last run
        self._sweep_now = True
        self._next_sweep = 0.0  # time.monotonic() of the next query for every pending document
        self._loop = Periodic(f"outbox-relay:{bus.service}", self.run_once, poll_interval, max_backoff_s=max_backoff)

    async def start(self) -> None:
        for collection in self.collections:
            await collection.create_index(PENDING)
        self._loop.start()

    def wake(self, doc_id: Any = None, *, collection: Any = None) -> None:
        """Run now instead of at the next poll (call right after committing events). With the id of
        the document that got them (in `collection`, by default the first one relayed), that
        document is published by its `_id`; without, every pending document is looked for."""
        if doc_id is None:
            self._sweep_now = True
        else:
            self._woken.append((self.collections[0] if collection is None else collection, doc_id))
        self._loop.wake()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run_once(self) -> int:
        """Publish the events of the documents woken for; and every due pending event when asked
        to, when nothing was woken for (a poll) or when a poll interval has passed since the last
        time. Returns how many were published."""
        woken, self._woken = self._woken, []
        published = await self._relay_all(list({(id(c), i): (c, i) for c, i in woken}.values()))
        if woken and not self._sweep_now and time.monotonic() < self._next_sweep:
            return published
        self._sweep_now = False
        self._next_sweep = time.monotonic() + self.poll_interval
        return published + await self._sweep()

    async def _relay_all(self, found: list[tuple[Any, Any]]) -> int:
        published = 0
        for result in await asyncio.gather(*(self._relay(c, i) for c, i in found), return_exceptions=True):
            if isinstance(result, BaseException):
                raise result
            published += result
        return published

    async def _sweep(self) -> int:
        published = 0
        for collection in self.collections:
            while True:
                query = {PENDING: True, **_due(self.clock.now())}
                ids = [doc["_id"] async for doc in collection.find(query, {"_id": 1}).limit(self.batch_size)]
                published += await self._relay_all([(collection, i) for i in ids])
                if len(ids) < self.batch_size:
                    break
        return published

    async def _relay(self, collection: Any, doc_id: Any) -> int:
        async with self._slots:
            now = self.clock.now()
            doc = await collection.find_one_and_update(
                {"_id": doc_id, PENDING: True, **_due(now)},
                {"$set": {LEASE: now + self.lease, OWNER: self.owner}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                return 0  # another relay holds it, or it was drained meanwhile
            entries = doc.get(OUTBOX) or []
            done: list[str] = []
            try:
                for entry in entries:  # in order, each confirmed before the next
                    await self.bus.publish(CloudEvent.model_validate(entry["envelope"]), exchange=entry.get("exchange"))
                    done.append(entry["id"])
            except Exception as exc:  # noqa: BLE001 - kept for a later attempt, never dropped
                await self._failed(collection, doc_id, done, doc.get(FAILURES, 0) + 1, entries[len(done)], exc)
                return len(done)
            await self._release(collection, doc_id, done, len(entries))
            return len(done)

    async def _release(self, collection: Any, doc_id: Any, done: list[str], size: int) -> None:
        # Fast path: nothing was pushed since the claim (same size) and the lease is still ours,
        # so the outbox holds exactly what was published and can be emptied in one write.
        result = await collection.update_one(
            {"_id": doc_id, OWNER: self.owner, OUTBOX: {"$size": size}},
            {"$set": {OUTBOX: []}, "$unset": {PENDING: "", LEASE: "", OWNER: "", FAILURES: ""}},
        )
        if result.matched_count:
            return
        # New events arrived (or the lease was lost): remove only what was published. `pending`
        # stays set, so a later run drains the rest and clears it.
        await collection.update_one({"_id": doc_id}, {"$pull": {OUTBOX: {"id": {"$in": done}}}})
        await collection.update_one(
            {"_id": doc_id, OWNER: self.owner}, {"$unset": {LEASE: "", OWNER: "", FAILURES: ""}}
        )

    async def _failed(
        self, collection: Any, doc_id: Any, done: list[str], failures: int, entry: dict[str, Any], exc: Exception
    ) -> None:
        delay = backoff_seconds(failures, base=max(self.poll_interval, 0.1), cap=self.max_backoff)
        if done:
            await collection.update_one({"_id": doc_id}, {"$pull": {OUTBOX: {"id": {"$in": done}}}})
        # Holding the lease until the back-off ends keeps every replica away from this document.
        await collection.update_one(
            {"_id": doc_id, OWNER: self.owner},
            {"$set": {LEASE: self.clock.now() + timedelta(seconds=delay), FAILURES: failures}, "$unset": {OWNER: ""}},
        )
        log.warning(
            "outbox publish failed, will retry",
            extra={
                "event_id": entry.get("id"),
                "event_type": entry.get("type"),
                "failures": failures,
                "retry_in_s": delay,
                "error": loggable(exc),
            },
        )
