"""Outbox relay: publishes the events stores committed into their documents, then removes them.

Stores commit an aggregate's events into its own document, in the same write as its change
(shared/outbox_writes.py). This relay publishes them (confirmed, in order) and removes them. A
crash between commit and publish loses nothing: a later sweep publishes. A crash between publish
and removal publishes again: delivery is at least once and consumers dedupe by event id (or are
idempotent) and order by `sequence`.

After the write a store tells the relay, one of two ways:

- `wake(doc_id, collection=c, entries=outbox)` with the document's whole outbox as the commit left
  it (an insert knows it; an update gets it back from find_one_and_update, projection `outbox`),
  the commit having leased the document to this relay in the same write (`claim=relay.claim()`,
  so other replicas' sweeps keep away; the write's filter holds `claimable()`, and
  while another relay holds the document the store commits without the claim and wakes with the id
  only, so an aggregate's events never go out of two replicas at once). The relay publishes them at once
  and releases the document with ONE conditional write (the outbox still holds exactly them:
  emptied, `outbox_pending` and the lease cleared), or, under load, with the other documents of the
  collection released meanwhile in two `update_many` writes (shared/outbox_release.py). If that
  write does not match (newer events arrived, or another relay removed some), the published ids
  are pulled and the claim stays: dropped, the `_id` path of another replica could publish the
  newer events beside a later commit of this process that added them and claimed the document for
  this relay, whose task may reach the document a moment later (seen as a duplicated
  `return.authorized` in the two-replica e2e test). Instead this relay's own `_id` path, which may
  take a document under its own claim, relays what is left at once; the relay remembers for a
  while what it published, so whichever of the two comes second skips it. The claim is long
  (`claim_for`, `OUTBOX_CLAIM_MS`, 30 s, like the `_id` path's lease): it only delays another replica after a crash,
  and one shorter than a stall of a loaded machine let two replicas publish the same events (a
  duplicated `return.shipped` and `return.received` in that test on a slow CI run, with 5 s).
  Should two relays still overlap on a document (a claim outlived), they publish duplicates, never
  an event before an older one of the same document: an event leaves the outbox only once
  published, and each relay sends in order.
- `wake(doc_id, collection=c)`: the document is leased by `_id` (findAndModify; free, or held by
  this relay), published and released: two writes.

`shared.outbox_writes.commit_events` is such an update of an existing document: claiming when it
may, and answering which of the two wakes follows.

Publishing one document's events is serialised in-process, so one replica never interleaves an
aggregate's events. Its release is queued before the next events may go out (releases are written
in that order) and is written while they do: under load that write, not the publish, is most of
the time of a step. A publish that fails is remembered in-process and retried by `_id` with back-off
(`retry_base` doubling up to `max_backoff`); the back-off is also written as a lease so other
replicas keep away. The query for every pending document (a scan on the embedded MongoDB-wire
server) runs at start-up, once per `poll_interval` (settings: `OUTBOX_POLL_MS`, 15 s by default)
and on a wake() without an id: it only finds what the relay itself cannot know about (a crash
between commit and publish, another replica that died).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from pymongo import ReturnDocument

from shared import ops_metrics
from shared.clock import Clock, SystemClock
from shared.events import CloudEvent
from shared.outbox_release import ReleaseBatcher
from shared.outbox_writes import FAILURES, LEASE, OUTBOX, OWNER, PENDING
from shared.periodic import Periodic, backoff_seconds
from shared.queues import loggable
from shared.settings import CommonSettings

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """What the relay publishes through: an EventBus, or shared.messaging.Announcer around one."""

    service: str

    async def publish(self, event: CloudEvent, *, exchange: str | None = None) -> None: ...


def _due(now: datetime) -> dict[str, Any]:
    return {"$or": [{LEASE: {"$exists": False}}, {LEASE: {"$lt": now}}]}


def _key(collection: Any, doc_id: Any) -> tuple[Any, Any]:
    return (getattr(collection, "full_name", None) or id(collection), doc_id)


@dataclass
class _Document:
    """In-process state of one document while relay work on it is queued or running."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    direct: int = 0  # of the users, commits handing their outbox over (the direct path)
    removed: set[str] = field(default_factory=set)  # published by us, their release queued or written


class OutboxRelay:
    def __init__(
        self,
        bus: Publisher,
        collections: Sequence[Any],
        *,
        poll_interval: float = 15.0,
        lease_seconds: float = 30.0,
        clock: Clock | None = None,
        batch_size: int = 100,
        concurrency: int = 64,
        max_backoff: float = 60.0,
        retry_base: float = 0.5,
        claim_seconds: float = 30.0,
    ) -> None:
        self.bus, self.collections = bus, list(collections)
        self.poll_interval, self.lease = poll_interval, timedelta(seconds=lease_seconds)
        self.clock = clock or SystemClock()
        self.batch_size, self.max_backoff, self.retry_base = batch_size, max_backoff, retry_base
        self.claim_for = timedelta(seconds=claim_seconds)
        self.owner = f"{bus.service}:{uuid.uuid4()}"
        self.concurrency = concurrency  # documents published at once (OUTBOX_CONCURRENCY)
        self._slots = asyncio.Semaphore(concurrency)
        self._woken: list[tuple[Any, Any]] = []  # (collection, _id) committed since the last run
        self._sweep_now = True
        self._next_sweep = 0.0  # time.monotonic() of the next query for every pending document
        self._documents: dict[tuple[Any, Any], _Document] = {}
        # Documents to relay by `_id` again, at a time.monotonic(): failed publishes (back-off) and
        # direct releases that found the outbox changed.
        self._retry: dict[tuple[Any, Any], tuple[Any, Any, float]] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._direct: set[asyncio.Task[None]] = set()
        self._releases: dict[Any, ReleaseBatcher] = {}  # per collection: direct-path releases written together
        # Per document: events a direct release found beside newer ones, published and pulled, with
        # a time.monotonic() to forget them at. The commit that added the newer ones hands over an
        # outbox that still lists ours, and its task may start after ours ended (and with it the
        # in-process `_Document`): it must not publish them again.
        self._pulled: dict[tuple[Any, Any], tuple[set[str], float]] = {}
        self._loop = Periodic(f"outbox-relay:{bus.service}", self.run_once, poll_interval, max_backoff_s=max_backoff)

    @classmethod
    def from_settings(cls, bus: Publisher, collections: Sequence[Any], settings: CommonSettings) -> OutboxRelay:
        """A relay as the service's settings configure it (OUTBOX_POLL_MS, OUTBOX_CONCURRENCY, OUTBOX_CLAIM_MS). Its
        leases are operational time (the system clock), not the possibly moved business clock."""
        return cls(
            bus,
            collections,
            poll_interval=settings.outbox_poll_ms / 1000,
            concurrency=settings.outbox_concurrency,
            claim_seconds=settings.outbox_claim_ms / 1000,
        )

    async def start(self) -> None:
        for collection in self.collections:
            await collection.create_index(PENDING)
        ops_metrics.watch(self, ops_metrics.outbox_source(self.bus.service, self.collections, self.clock))
        self._loop.start()

    def wake(
        self, doc_id: Any = None, *, collection: Any = None, entries: Sequence[dict[str, Any]] | None = None
    ) -> None:
        """Call right after committing events. With the id of the document that got them (in
        `collection`, by default the first one relayed) and its outbox as committed (`entries`),
        they are published at once; with the id only, that document is leased and published by
        its `_id`; without an id, every pending document is looked for."""
        target = self.collections[0] if collection is None else collection
        if doc_id is not None and entries is not None:
            if entries:
                task = asyncio.create_task(self._relay_direct(target, doc_id, list(entries)))
                self._direct.add(task)
                task.add_done_callback(self._direct.discard)
            return
        if doc_id is None:
            self._sweep_now = True
        else:
            self._woken.append((target, doc_id))
        self._loop.wake()

    def claim(self) -> dict[str, Any]:
        """Lease fields a store writes with its events (`with_outbox(..., claim=relay.claim())`) before
        handing the outbox to wake(): other replicas' sweeps keep away while this relay publishes.
        It lasts `claim_for` (OUTBOX_CLAIM_MS): after a crash, another replica's sweep takes the
        document that much later. The write's filter must include `claimable()`."""
        return {LEASE: self.clock.now() + self.claim_for, OWNER: self.owner}

    def claimable(self) -> dict[str, Any]:
        """Filter fragment of a claiming write: no other relay holds the document. When it fails
        (and only that), the store writes again without the claim and wakes with the id only: the
        relay holding it finds the new events when it releases (see the module docstring)."""
        return {"$or": [{OWNER: {"$exists": False}}, {OWNER: self.owner}, {LEASE: {"$lt": self.clock.now()}}]}

    async def stop(self) -> None:
        ops_metrics.unwatch(self)
        if self._direct:  # committed events being published: let them finish (a sweep would redo them)
            await asyncio.wait(self._direct, timeout=5)
        for task in list(self._direct):
            task.cancel()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        await self._loop.stop()

    async def run_once(self) -> int:
        """Publish the events of the documents woken for or due for a retry; and every due pending
        event when asked to, or when a poll interval has passed since the last sweep. Returns how
        many were published."""
        woken, self._woken = self._woken, []
        now = time.monotonic()
        due = [key for key, (_, _, at) in self._retry.items() if at <= now]
        retries = [self._retry.pop(key)[:2] for key in due]
        found = list({_key(c, i): (c, i) for c, i in [*woken, *retries]}.values())
        published = await self._relay_all(found)
        if not self._sweep_now and time.monotonic() < self._next_sweep:
            return published
        self._sweep_now = False
        self._next_sweep = time.monotonic() + self.poll_interval
        return published + await self._sweep()

    def _retry_in(self, collection: Any, doc_id: Any, delay: float) -> None:
        """Relay the document by `_id` again after `delay` seconds (in-process, no sweep needed)."""
        # A little after the lease written for the back-off (business clock) has surely expired.
        delay += 0.01 if delay else 0
        self._retry[_key(collection, doc_id)] = (collection, doc_id, time.monotonic() + delay)
        if not delay:
            # Due now. No timer: uvloop (the services' loop) answers call_later(0) with a plain
            # Handle, which has no when(), and one in _timers broke every later _retry_in.
            self._loop.wake()
            return
        loop = asyncio.get_running_loop()
        self._timers = {t for t in self._timers if t.when() > loop.time()}  # forget the ones that fired
        self._timers.add(loop.call_later(delay, self._loop.wake))

    @asynccontextmanager
    async def _tracked(self, collection: Any, doc_id: Any, *, direct: bool = False) -> AsyncIterator[_Document]:
        """The document's in-process state, kept while any relay work on it is queued or running."""
        key = _key(collection, doc_id)
        state = self._documents.setdefault(key, _Document())
        state.users += 1
        state.direct += direct
        try:
            yield state
        finally:
            state.users -= 1
            state.direct -= direct
            if not state.users:
                del self._documents[key]

    @asynccontextmanager
    async def _document(self, collection: Any, doc_id: Any) -> AsyncIterator[_Document]:
        """One relay at a time per document in this process (events of an aggregate stay in order)."""
        async with self._tracked(collection, doc_id) as state, state.lock, self._slots:
            yield state

    async def _relay_all(self, found: list[tuple[Any, Any]]) -> int:
        published, failure = 0, None
        results = await asyncio.gather(*(self._relay(c, i) for c, i in found), return_exceptions=True)
        for (collection, doc_id), result in zip(found, results, strict=True):
            if isinstance(result, BaseException):  # the store is away: try this one again by itself
                self._retry_in(collection, doc_id, self.retry_base)
                failure = result
            else:
                published += result
        if failure is not None:
            raise failure
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

    # ---- the direct path: events known at commit ---------------------------------------------

    async def _relay_direct(self, collection: Any, doc_id: Any, entries: list[dict[str, Any]]) -> None:
        key = _key(collection, doc_id)
        done: list[str] = []
        async with self._tracked(collection, doc_id, direct=True) as state:
            async with state.lock, self._slots:
                # What this process already published (an earlier commit's relay) is not sent again.
                pulled = self._recently_pulled(key)
                entries = [e for e in entries if e["id"] not in state.removed and e["id"] not in pulled]
                if not entries:
                    return
                try:
                    for entry in entries:  # in order, each confirmed before the next
                        envelope = CloudEvent.model_validate(entry["envelope"])
                        await self.bus.publish(envelope, exchange=entry.get("exchange"))
                        done.append(entry["id"])
                except Exception as exc:  # noqa: BLE001 - kept for a later attempt, never dropped
                    await self._direct_failed(collection, doc_id, entries, done, exc)
                    return
                # All confirmed: the document's next events may go out while this release waits for
                # its write (under load, most of a step's time). Queued before the lock is let go,
                # so the document's releases are written in the order of its events.
                released = self._release_exactly(collection, doc_id, done)
                state.removed.update(done)
            try:
                if await released:
                    return
            except Exception as exc:  # noqa: BLE001 - the store is away: kept for a later attempt
                state.removed.difference_update(done)  # still in the outbox: a later commit's relay sends them
                async with state.lock:
                    await self._direct_failed(collection, doc_id, entries, done, exc)
                return
            # Newer events arrived, or another relay removed some; ours are out of the outbox
            # now. The claim stays: dropped, another replica's `_id` path could publish the newer
            # events beside a later commit of ours that claimed them (its task may not have reached
            # this document yet). Unless such a task is already queued here, our own `_id` path
            # relays what is left at once, under the claim; whichever of the two comes second skips
            # what the first published (`_pulled`).
            self._remember_pulled(key, state.removed)
            if state.direct == 1:
                self._retry_in(collection, doc_id, 0)

    async def _direct_failed(
        self, collection: Any, doc_id: Any, entries: list[dict[str, Any]], done: list[str], exc: Exception
    ) -> None:
        failed = next((e for e in entries if e["id"] not in done), {})
        try:  # the `_id` path's back-off: our claim becomes a lease until the retry
            await self._failed(collection, doc_id, done, 1, failed, exc)
        except Exception:  # the store is away too: our `_id` path retries under the claim
            self._retry_in(collection, doc_id, self.retry_base)
            log.exception("outbox publish failed, will retry", extra={"event_id": failed.get("id")})

    def _recently_pulled(self, key: tuple[Any, Any]) -> set[str]:
        # One lookup on the commit path; forgetting the stale ones is _remember_pulled's (rare) work.
        ids, until = self._pulled.get(key, (set(), 0.0))
        return ids if until > time.monotonic() else set()

    def _remember_pulled(self, key: tuple[Any, Any], ids: Iterable[str]) -> None:
        # Twice the claim: a handover later than that finds them gone from the store anyway.
        known = self._recently_pulled(key)
        now = time.monotonic()
        for stale in [k for k, (_, until) in self._pulled.items() if until <= now]:
            del self._pulled[stale]
        self._pulled[key] = (known | set(ids), now + 2 * self.claim_for.total_seconds())

    def _release_exactly(self, collection: Any, doc_id: Any, published: list[str]) -> asyncio.Future[bool]:
        """Queue: empty the outbox if it holds exactly the `published` events (ids are unique), else
        pull them; someone else's lease on it goes too when it is emptied: there is nothing left for
        it to publish. Written together with the other releases of the collection waiting meanwhile
        (shared.outbox_release). Answers whether the outbox was emptied."""
        key = _key(collection, None)[0]
        batcher = self._releases.get(key) or self._releases.setdefault(key, ReleaseBatcher(collection))
        return batcher.release(doc_id, published)

    # ---- the `_id` path: lease, publish, release ---------------------------------------------

    async def _relay(self, collection: Any, doc_id: Any) -> int:
        key = _key(collection, doc_id)
        async with self._document(collection, doc_id) as state:
            now = self.clock.now()
            # Ours to take when no one holds it, or when we do (a claim of our commits, whose newer
            # events another replica may have added meanwhile: see _relay_direct).
            doc = await collection.find_one_and_update(
                {"_id": doc_id, PENDING: True, "$or": [*_due(now)["$or"], {OWNER: self.owner}]},
                {"$set": {LEASE: now + self.lease, OWNER: self.owner}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                return 0  # another relay holds it, or it was drained meanwhile
            outbox = doc.get(OUTBOX) or []
            # Published by a direct task of ours whose release is not written yet, or by an earlier
            # run: out of the outbox with this release, never sent again.
            known = state.removed | self._recently_pulled(key)
            entries = [e for e in outbox if e["id"] not in known]
            done: list[str] = []
            try:
                for entry in entries:  # in order, each confirmed before the next
                    await self.bus.publish(CloudEvent.model_validate(entry["envelope"]), exchange=entry.get("exchange"))
                    done.append(entry["id"])
            except Exception as exc:  # noqa: BLE001 - kept for a later attempt, never dropped
                await self._failed(collection, doc_id, done, doc.get(FAILURES, 0) + 1, entries[len(done)], exc)
                return len(done)
            self._remember_pulled(key, done)  # a handover of ours still on its way skips them
            released = [e["id"] for e in outbox if e["id"] in known] + done
            await self._release(collection, doc_id, released)
            return len(done)

    async def _release(self, collection: Any, doc_id: Any, done: list[str]) -> None:
        # As a direct release (`_release_exactly`): emptied if the outbox holds exactly what was
        # published, else those are pulled. Then, had nothing else arrived (our direct task's release
        # may have pulled some meanwhile), the document is let go; else the lease stays (it may be a
        # claim of a commit of ours on its way here) and this relay relays the rest at once.
        if await self._release_exactly(collection, doc_id, done):
            return
        emptied = await collection.update_one(
            {"_id": doc_id, OWNER: self.owner, OUTBOX: {"$size": 0}},
            {"$unset": {PENDING: "", LEASE: "", OWNER: "", FAILURES: ""}},
        )
        if not emptied.matched_count:
            self._retry_in(collection, doc_id, 0)

    async def _failed(
        self, collection: Any, doc_id: Any, done: list[str], failures: int, entry: dict[str, Any], exc: Exception
    ) -> None:
        delay = backoff_seconds(failures, base=self.retry_base, cap=self.max_backoff)
        if done:
            await collection.update_one({"_id": doc_id}, {"$pull": {OUTBOX: {"id": {"$in": done}}}})
        # Holding the lease until the back-off ends keeps every replica away from this document;
        # this relay remembers it and tries again then, without waiting for a sweep.
        await collection.update_one(
            {"_id": doc_id, OWNER: self.owner},
            {"$set": {LEASE: self.clock.now() + timedelta(seconds=delay), FAILURES: failures}, "$unset": {OWNER: ""}},
        )
        self._retry_in(collection, doc_id, delay)
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
