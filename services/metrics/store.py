"""The only module that knows MongoDB: facts (one per return, refund, delivered order; the order defect
rate's in dispute_store.py, written the same way) and buyers.

A fact is replaced only by a newer version of its aggregate (one upsert per event; an equal
version of our own aggregates is the same state, written again as a no-op), so duplicates and late
arrivals change nothing. Buyer documents (`_id` = buyer id) hold the buyer's
window (the returns and delivered orders not older than the abuse window, each once by id), the flag state and its
version, and a `revision` bumped by every write: a buyer's event is one `_id` read and one write
conditional on the revision read, which changes the window, the standing computed from it, the
flag and (when it flips) its `buyer.*` event together (outbox). A concurrent write makes the
condition fail and the event is applied again on the newer document, so nothing is lost or
counted twice, and no hot path scans the facts.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import partial
from typing import Any, cast

from motor.motor_asyncio import AsyncIOMotorCollection, AsyncIOMotorDatabase
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from services.metrics.abuse import RecentDelivery, RecentReturn, Standing, Window, window_of
from services.metrics.credit_store import StoreCreditFacts
from services.metrics.dispute_store import IDS_PER_QUERY, DisputeFacts
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
from shared.outbox_writes import Claims, commit_events, outbox_fields
from shared.upserts import UpsertBatcher, upsert_one

# How many times a buyer's flag write is retried after losing a race with another replica.
FLAG_WRITE_ATTEMPTS = 10


class FlagWriteContention(RuntimeError):
    """Every attempt lost a race; the bus retries the event later."""


class Kept(Enum):
    """What became of a fact: the first of its aggregate, a newer version, or stale (not kept)."""

    FIRST = "first"
    NEWER = "newer"
    STALE = "stale"

    def __bool__(self) -> bool:
        return self is not Kept.STALE


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
        self._writing = KeyedLock()
        self.disputes = DisputeFacts(db, self._record)
        self.store_credit = StoreCreditFacts(db, self._record)
        # Facts of one collection handled at once are written together (shared/upserts.py), with a
        # strict version filter. Return facts carry our own aggregate's versions, one per event, so
        # an equal version is a redelivery: it collides in the batch and is decided alone, where it
        # matches and changes nothing (`same_if_equal`). Refund facts are not batched: refund.issued
        # and return.refunded carry one refund at one version, and the second would collide.
        self._batchers = {
            c.name: UpsertBatcher(c, partial(self._upsert_one, c), first=Kept.FIRST, newer=Kept.NEWER)
            for c in (self.notifications, self.deliveries, self.disputes.expired)
        }
        self._batchers[self.returns.name] = UpsertBatcher(
            self.returns,
            partial(self._upsert_same_if_equal, self.returns, "version"),
            first=Kept.FIRST,
            newer=Kept.NEWER,
        )
        # The relay that publishes buyer.* (the wiring sets it): a flag's event is committed claimed
        # for it. Unset: nothing is claimed, and the relay is woken by id.
        self.outbox_relay: Claims | None = None

    async def ensure_indexes(self) -> None:
        await self.returns.create_index([("seller_id", ASCENDING), ("created_at", ASCENDING)])
        await self.returns.create_index([("buyer_id", ASCENDING), ("created_at", ASCENDING)])
        await self.returns.create_index([("last_event_at", ASCENDING)])
        await self.refunds.create_index([("seller_id", ASCENDING), ("issued_at", ASCENDING)])
        await self.refunds.create_index([("issued_at", ASCENDING)])
        await self.refunds.create_index([("return_id", ASCENDING)])
        await self.refunds.create_index([("order_id", ASCENDING)])
        await self.deliveries.create_index([("seller_id", ASCENDING), ("delivered_at", ASCENDING)])
        await self.deliveries.create_index([("buyer_id", ASCENDING), ("delivered_at", ASCENDING)])
        await self.notifications.create_index([("at", ASCENDING)])
        await self.buyers.create_index([("flagged", ASCENDING)])
        await self.buyers.create_index([("review_at", ASCENDING)])
        await self.disputes.ensure_indexes()
        await self.store_credit.ensure_indexes()

    # ---- facts ----------------------------------------------------------------------------

    async def _record(
        self, collection: AsyncIOMotorCollection, doc: dict[str, Any], version_field: str, same_if_equal: bool = False
    ) -> Kept:
        """Keep `doc` unless a version at least as new is stored. `same_if_equal`: an equal version
        carries the same state (our own aggregates' versions), so it may be written again as a no-op."""
        async with self._writing.hold(f"{collection.name}:{doc['_id']}"):
            return await self._record_unlocked(collection, doc, version_field, "$lte" if same_if_equal else "$lt")

    async def _record_unlocked(
        self, collection: AsyncIOMotorCollection, doc: dict[str, Any], version_field: str, older: str
    ) -> Kept:
        # One upsert per event: it replaces an older version, or creates the fact when there is
        # none. A newer version stored makes the filter miss and the insert collide on `_id`. An
        # equal one, where `older` is $lte, matches and changes nothing: refund.issued and
        # return.refunded carry one refund at one version, so the second costs one command, not two.
        update = {"$set": {k: v for k, v in doc.items() if k != "_id"}}
        batcher = self._batchers.get(collection.name)
        if batcher is not None:  # written with the others waiting, the version compared strictly
            strict = {"_id": doc["_id"], version_field: {"$lt": doc[version_field]}}
            return cast(Kept, await batcher.upsert(strict, update))
        current = {"_id": doc["_id"], version_field: {older: doc[version_field]}}
        return await self._upsert_one(collection, current, update)

    async def _upsert_same_if_equal(
        self, collection: AsyncIOMotorCollection, version_field: str, current: dict[str, Any], update: dict[str, Any]
    ) -> Kept:
        """`_upsert_one` with the batch's strict version filter relaxed: an equal version matches."""
        relaxed = {**current, version_field: {"$lte": current[version_field]["$lt"]}}
        return await self._upsert_one(collection, relaxed, update)

    async def _upsert_one(
        self, collection: AsyncIOMotorCollection, current: dict[str, Any], update: dict[str, Any]
    ) -> Kept:
        result = await upsert_one(collection, current, update)
        if result.upserted_id is not None:
            return Kept.FIRST
        return Kept.NEWER if result.modified_count == 1 else Kept.STALE

    async def record_return(self, fact: ReturnFact) -> Kept:
        return await self._record(self.returns, to_document(fact), "version", same_if_equal=True)

    async def record_refund(self, fact: RefundFact) -> Kept:
        return await self._record(self.refunds, to_document(fact), "version", same_if_equal=True)

    async def record_delivery(self, fact: DeliveryFact) -> Kept:
        # Sequences come from the order system: an equal one is not known to carry the same state.
        return await self._record(self.deliveries, to_document(fact), "sequence")

    async def record_notification(self, note: Notification) -> Kept:
        """One fact per email; a later outcome (a resend that succeeded) replaces an earlier one.

        Not a counter per period bucket: a report's period starts and ends at any millisecond, an
        outcome may move to another instant (the resend), and a counter would need the email's id
        kept with it to stay idempotent, so one upsert per email is what an exact count costs."""
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

    async def refunds_of_orders(self, order_ids: list[str]) -> list[RefundFact]:
        """Every refund of these orders (the seller rating's "no refund or concession")."""
        found: list[RefundFact] = []
        for start in range(0, len(order_ids), IDS_PER_QUERY):
            query = {"order_id": {"$in": order_ids[start : start + IDS_PER_QUERY]}}
            found += [refund_from_document(doc) async for doc in self.refunds.find(query)]
        return found

    async def deliveries_in(self, period: Period, seller_id: str) -> list[DeliveryFact]:
        query = {"seller_id": seller_id, "delivered_at": {"$gte": period.start, "$lt": period.end}}
        return [delivery_from_document(doc) async for doc in self.deliveries.find(query)]

    async def buyer_facts(self, buyer_id: str, since: datetime) -> tuple[list[ReturnFact], list[DeliveryFact]]:
        """Scans the facts (not on a hot path): seeds a buyer's window on a rebuild, or once for a
        buyer document written before windows were kept."""
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

    async def buyer(self, buyer_id: str, since: datetime) -> tuple[Window, FlagState | None]:
        """The buyer's window (entries older than `since` left out) and flag state: one `_id` read."""
        doc = await self.buyers.find_one({"_id": buyer_id}, {OUTBOX_FIELD: 0})
        window = await self._window(buyer_id, doc, since, reseed=False)
        return window, _flag_state(doc) if doc else None

    async def flag_state(self, buyer_id: str) -> FlagState | None:
        doc = await self.buyers.find_one({"_id": buyer_id})
        return _flag_state(doc) if doc else None

    async def flagged_buyers(self) -> int:
        return await self.buyers.count_documents({"flagged": True})

    async def buyers_due_for_review(self, now: datetime) -> list[str]:
        """Not hot: the periodic review's sweep (a window ages with no event; `review_at` says when)."""
        return [doc["_id"] async for doc in self.buyers.find({"review_at": {"$lt": now}}, {"_id": 1})]

    async def _window(self, buyer_id: str, doc: dict[str, Any] | None, since: datetime, reseed: bool) -> Window:
        window = _window_of(doc).trimmed(since) if doc else Window()
        if reseed or (doc is not None and REVISION not in doc):
            window = window.merged(window_of(buyer_id, *await self.buyer_facts(buyer_id, since), since), since)
        return window

    async def settle_flag(
        self,
        buyer_id: str,
        change: Callable[[Window], Window],
        assess: Callable[[Window], Standing],
        since: datetime,
        event: Callable[[Standing, int], CloudEvent],
        reseed: bool = False,
    ) -> tuple[Standing, dict[str, Any] | None]:
        """Change the buyer's window, assess it and store both; a changed flag also queues its event.

        `change` must be idempotent (adding an entry already there changes nothing): after a lost
        race it is applied again to the newer document. `reseed` merges the window with the
        buyer's facts first (a rebuild: a longer window may need facts already trimmed).
        Returns the standing and, when the flag changed, how to wake the outbox relay for its event
        (`OutboxRelay.wake(buyer_id, **how)`, see `shared.outbox_writes.commit_events`); None when not.
        """
        async with self._writing.hold(f"buyers:{buyer_id}"):
            for _ in range(FLAG_WRITE_ATTEMPTS):
                doc = await self.buyers.find_one({"_id": buyer_id}, {OUTBOX_FIELD: 0})
                window = change(await self._window(buyer_id, doc, since, reseed))
                standing = assess(window)
                figures = {
                    "returns": standing.returns,
                    "orders": standing.orders,
                    "returned_orders": standing.returned_orders,
                    "reason": standing.reason,
                    "assessed_at": standing.assessed_at,
                    **_window_fields(window),
                }
                if doc is None:
                    changed = standing.flagged
                    version = 1 if changed else 0
                    fields = {
                        "flagged": changed,
                        "version": version,
                        "since": standing.assessed_at if changed else None,
                        REVISION: 1,
                        **figures,
                    }
                    if standing.review_at is not None:
                        fields["review_at"] = standing.review_at
                    events = [event(standing, version)] if changed else []
                    claim = self.outbox_relay.claim() if events and self.outbox_relay is not None else None
                    outbox = outbox_fields(events, claim=claim)
                    try:
                        await self.buyers.insert_one({"_id": buyer_id, **fields, **outbox})
                    except DuplicateKeyError:
                        continue  # another replica created it: apply the change to its document
                    if not changed:
                        return standing, None
                    return standing, ({"entries": outbox[OUTBOX_FIELD]} if claim else {})
                revision = doc.get(REVISION)
                current = {"_id": buyer_id, REVISION: revision if revision is not None else {"$exists": False}}
                figures[REVISION] = (revision or 0) + 1
                if doc["flagged"] == standing.flagged:
                    if revision is not None and _as_stored(doc, window, standing):
                        # A copy of an event already counted (or a return noted twice): only the
                        # assessment instant would change, and nothing reads it back.
                        return standing, None
                    result = await self.buyers.update_one(current, _assessment(figures, standing.review_at))
                    if result.matched_count:
                        return standing, None
                    continue
                version = doc["version"] + 1
                state = {"flagged": standing.flagged, "version": version, "since": standing.assessed_at, **figures}
                update = _assessment(state, standing.review_at)
                events = [event(standing, version)]
                handover = await commit_events(self.buyers, current, update, events, self.outbox_relay)
                if handover is not None:
                    return standing, handover
            raise FlagWriteContention(buyer_id)


# The buyer document's window and its write counter.
REVISION = "revision"
WINDOW_RETURNS = "window_returns"
WINDOW_DELIVERIES = "window_deliveries"
OUTBOX_FIELD = "outbox"


def _window_fields(window: Window) -> dict[str, Any]:
    return {
        WINDOW_RETURNS: [{"id": r.return_id, "order_id": r.order_id, "at": r.at} for r in window.returns],
        WINDOW_DELIVERIES: [{"id": d.order_id, "sequence": d.sequence, "at": d.at} for d in window.deliveries],
    }


def _window_of(doc: dict[str, Any]) -> Window:
    return Window(
        tuple(RecentReturn(e["id"], e["order_id"], e["at"]) for e in doc.get(WINDOW_RETURNS, ())),
        tuple(RecentDelivery(e["id"], e["sequence"], e["at"]) for e in doc.get(WINDOW_DELIVERIES, ())),
    )


def _as_stored(doc: dict[str, Any], window: Window, standing: Standing) -> bool:
    """Whether the buyer's document already holds this window and standing."""
    stored = (doc.get(k) for k in ("returns", "orders", "returned_orders", "reason", "review_at"))
    figures = (standing.returns, standing.orders, standing.returned_orders, standing.reason, standing.review_at)
    return _window_of(doc) == window and tuple(stored) == figures


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
