"""The only module that knows MongoDB: orders, seller policies, buyer flags and returns."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Collection
from datetime import datetime
from decimal import Decimal
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument

from services.returns.policy import SellerPolicy
from services.returns.schemas import ReturnFilter
from shared import ops_metrics
from shared.events import ORDERS_EXCHANGE, CloudEvent, new_event
from shared.models import STORED, BuyerFlag, Order, Return, ReturnStatus
from shared.mongo import DuplicateKeyError
from shared.outbox_writes import OUTBOX, outbox_fields, with_outbox
from shared.page_query import find_page
from shared.pagination import Page

SERVICE = "returns"
# Store-only field: when the return's open keep-it offer expires; absent while none is open.
OFFER_EXPIRES_AT = "offer_expires_at"
# The deadline jobs leave alone a return the buyer settled by keeping the item (an accepted offer).
NOT_SETTLED: dict[str, Any] = {"settlement": None}
# How many of the returns this process wrote last it remembers (`recent`): every return in flight
# through its next transition, without a read, even with a backlog of refunds behind. A one-line
# return takes about 13 KiB in memory (tracemalloc), so some 30 MB at most.
RECENT_RETURNS = 2048


# Policies stored before marketplaces (checked against today's US profile) keep their key: the
# seller's id is their US policy's key, `seller_id:CODE` that of every other marketplace.
LEGACY_MARKETPLACE = "US"


def policy_key(seller_id: str, marketplace: str) -> str:
    """One stored policy per (seller, marketplace); a code is two capitals, so keys never collide."""
    return seller_id if marketplace == LEGACY_MARKETPLACE else f"{seller_id}:{marketplace}"


class ConcurrentOrderWrite(RuntimeError):
    """The same order was rewritten concurrently three times in a row."""


__all__ = ["DuplicateKeyError", "ReturnsStore", "StoredPolicy"]


def to_document(value: Any) -> Any:
    """Decimals are stored as text: exact, readable, and the same on every MongoDB-wire server."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: to_document(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_document(item) for item in value]
    return value


def return_fields(ret: Return) -> dict[str, Any]:
    return to_document(ret.model_dump(mode="python"))


def events_of(changes: list[tuple[str, Return]], now: datetime) -> list[CloudEvent]:
    return [
        new_event(event_type, service=SERVICE, subject=ret.return_id, data=ret, sequence=ret.version, time=now)
        for event_type, ret in changes
    ]


def return_criteria(wanted: ReturnFilter) -> dict[str, Any]:
    """The MongoDB filter of a list of returns: each field that is set, all of them at once."""
    criteria: dict[str, Any] = {}
    for field, value in (("order_id", wanted.order_id), ("buyer.id", wanted.buyer_id), ("seller.id", wanted.seller_id)):
        if value is not None:
            criteria[field] = value
    if wanted.status is not None:
        criteria["status"] = wanted.status.value
    created: dict[str, datetime] = {}
    if wanted.created_from is not None:
        created["$gte"] = wanted.created_from
    if wanted.created_to is not None:
        created["$lt"] = wanted.created_to
    if created:
        criteria["created_at"] = created
    return criteria


class StoredPolicy(SellerPolicy):
    seller_id: str
    marketplace: str = LEGACY_MARKETPLACE  # policies stored before marketplaces were the US rules'
    version: int = 0
    updated_at: datetime | None = None


class ReturnsStore:
    def __init__(self, db: Any, *, orders_exchange: str = ORDERS_EXCHANGE) -> None:
        self.db, self.orders_exchange = db, orders_exchange
        self.orders = db["orders"]
        self.policies = db["seller_policies"]
        self.buyers = db["buyer_flags"]
        self.returns = db["returns"]
        # Lease fields written with a return's events, and the filter that goes with them
        # (OutboxRelay.claim, .claimable; the wiring sets them). Unset: no claim, woken by id.
        self.outbox_claim: Callable[[], dict[str, Any]] = dict
        self.outbox_claimable: Callable[[], dict[str, Any]] = dict
        self._recent: OrderedDict[str, Return] = OrderedDict()

    async def ensure_indexes(self) -> None:
        # One return per (order, sequence number): two racing requests for the same order cannot both
        # take the same slot, so each is checked against every return before it (see `insert_return`).
        # It is also how an order's returns are read (`returns_of_order`).
        await self.returns.create_index([("order_id", ASCENDING), ("order_seq", ASCENDING)], unique=True)
        await self.returns.create_index([("buyer.id", ASCENDING), ("created_at", DESCENDING)])
        await self.returns.create_index([("seller.id", ASCENDING), ("created_at", DESCENDING)])
        await self.returns.create_index([("created_at", DESCENDING)])
        await self.returns.create_index([("status", ASCENDING), ("response_due_at", ASCENDING)])
        await self.returns.create_index([("status", ASCENDING), ("ship_by", ASCENDING)])
        # Store-only: the open keep-it offer's expiry, present only while one is open (`apply`).
        await self.returns.create_index([(OFFER_EXPIRES_AT, ASCENDING)], sparse=True)

    # ---- orders -------------------------------------------------------------------------------

    async def save_order(self, order: Order, *, announce_at: datetime | None = None, sequence: int = 0) -> bool:
        """Upsert the snapshot; True when it was new. Replaying the same snapshot changes nothing.

        From `order.delivered` (`sequence`: the upstream's own) a snapshot replaces the stored one
        only when its sequence is higher: an older one arriving late (or replayed) changes nothing.

        With `announce_at` (the order came over HTTP, not from the orders exchange) a new or changed
        snapshot is also published as `order.delivered` on the orders exchange, through this
        document's outbox, so refunds and metrics learn the order too.
        """
        digest = hashlib.sha256(order.model_dump_json().encode()).hexdigest()
        if announce_at is None:
            return await self._save_order_quietly(order, digest, sequence)
        for _ in range(3):  # a concurrent writer of the same order moved the version: read again
            stored = await self.orders.find_one({"_id": order.order_id}, {"snapshot_digest": 1, "snapshot_version": 1})
            if stored is not None and stored.get("snapshot_digest") == digest:
                return False
            version = (stored or {}).get("snapshot_version", 0) + 1
            update: dict[str, Any] = {
                "$set": order.model_dump(mode="python") | {"snapshot_digest": digest, "snapshot_version": version}
            }
            if announce_at is not None:
                event = new_event(
                    "order.delivered",
                    service=SERVICE,
                    subject=order.order_id,
                    data=order,
                    sequence=version,
                    time=announce_at,
                )
                update = with_outbox(update, [event], exchange=self.orders_exchange)
            condition = {"snapshot_version": stored.get("snapshot_version")} if stored else {}
            try:
                result = await self.orders.update_one({"_id": order.order_id, **condition}, update, upsert=True)
            except DuplicateKeyError:
                continue
            if result.upserted_id is not None or result.modified_count:
                return stored is None
        raise ConcurrentOrderWrite(order.order_id)

    async def _save_order_quietly(self, order: Order, digest: str, sequence: int) -> bool:
        """One write, no read: an upsert of a snapshot that differs from the stored one and is newer
        (`upstream_sequence`; a snapshot stored over HTTP has none). The same snapshot stored already
        (a duplicate `order.delivered`, or two copies at once) or a newer one fails the filter, so the
        upsert tries to insert the `_id` and the unique `_id` refuses."""
        older = [{"upstream_sequence": {"$exists": False}}, {"upstream_sequence": {"$lt": sequence}}]
        try:
            result = await self.orders.update_one(
                {"_id": order.order_id, "snapshot_digest": {"$ne": digest}, "$or": older},
                {
                    "$set": order.model_dump(mode="python")
                    | {"snapshot_digest": digest, "upstream_sequence": sequence},
                    "$inc": {"snapshot_version": 1},
                },
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return result.upserted_id is not None

    async def get_order(self, order_id: str) -> Order | None:
        doc = await self.orders.find_one({"_id": order_id}, {"outbox": 0})
        return None if doc is None else Order.model_validate(doc, context=STORED)

    # ---- seller policies ----------------------------------------------------------------------

    async def get_policy(self, seller_id: str, marketplace: str) -> StoredPolicy | None:
        doc = await self.policies.find_one({"_id": policy_key(seller_id, marketplace)})
        return None if doc is None else StoredPolicy.model_validate({k: v for k, v in doc.items() if k != "_id"})

    async def put_policy(self, seller_id: str, marketplace: str, policy: SellerPolicy, now: datetime) -> StoredPolicy:
        fields = to_document(policy.model_dump(mode="python"))
        fields |= {"seller_id": seller_id, "marketplace": marketplace, "updated_at": now}
        doc = await self.policies.find_one_and_update(
            {"_id": policy_key(seller_id, marketplace)},
            {"$set": fields, "$inc": {"version": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return StoredPolicy.model_validate({k: v for k, v in doc.items() if k != "_id"})

    # ---- buyer flags --------------------------------------------------------------------------

    async def buyer_flagged(self, buyer_id: str) -> bool:
        doc = await self.buyers.find_one({"_id": buyer_id}, {"flagged": 1})
        return bool(doc and doc.get("flagged"))

    async def save_buyer_flag(self, flag: BuyerFlag, sequence: int) -> bool:
        """Keep the newest decision per buyer: an older event arriving late changes nothing.

        Ordered by the event's `sequence` (the metrics service's version of the buyer), not by
        `at`, which two decisions can share when clocks are coarse or moved.
        """
        fields = {"flagged": flag.flagged, "at": flag.at, "reason": flag.reason, "sequence": sequence}
        try:
            result = await self.buyers.update_one(
                {"_id": flag.buyer_id, "sequence": {"$lt": sequence}}, {"$set": fields}, upsert=True
            )
        except DuplicateKeyError:  # the stored decision is as new or newer
            return False
        return bool(result.modified_count or result.upserted_id is not None)

    # ---- returns ------------------------------------------------------------------------------

    def recent(self, return_id: str) -> Return | None:
        """The return as this process last wrote it, if remembered (RECENT_RETURNS). It may be stale
        (another replica or a job of another process wrote since): fit only as `apply`'s `before`,
        whose compare-and-set on the version refuses a stale one."""
        return self._recent.get(return_id)

    def _remember(self, ret: Return) -> None:
        self._recent[ret.return_id] = ret
        self._recent.move_to_end(ret.return_id)
        if len(self._recent) > RECENT_RETURNS:
            self._recent.popitem(last=False)

    async def get_return(self, return_id: str) -> Return | None:
        doc = await self.returns.find_one({"_id": return_id}, {"outbox": 0})
        return None if doc is None else Return.model_validate(doc)

    async def returns_of_order(self, order_id: str) -> tuple[list[Return], int]:
        """The order's returns and the next free sequence number for a new one.

        An order's returns hold the slots 1, 2, 3...: a new return takes the first free slot (its
        insert fails if another took it meanwhile) and no return is ever deleted. So they are read
        slot by slot on the unique key (order_id, order_seq) up to the first free one, never by a
        query over the collection (which the embedded server would answer with a scan).
        """
        found: list[Return] = []
        while doc := await self.returns.find_one({"order_id": order_id, "order_seq": len(found) + 1}, {"outbox": 0}):
            found.append(Return.model_validate(doc))
        return found, len(found) + 1

    async def insert_return(
        self, changes: list[tuple[str, Return]], order_seq: int, now: datetime
    ) -> list[dict[str, Any]]:
        """The new return as it stands after `changes`, with their events; returns its outbox (for
        the relay). DuplicateKeyError when the id (a retried request) or the order's sequence slot
        (a concurrent request) is taken."""
        final = changes[-1][1]
        doc = {
            "_id": final.return_id,
            **return_fields(final),
            "order_seq": order_seq,
            **outbox_fields(events_of(changes, now), claim=self.outbox_claim()),
        }
        await self.returns.insert_one(doc)
        self._remember(final)
        ops_metrics.transitions(t for t, _ in changes)
        return list(doc[OUTBOX])

    async def apply(
        self,
        before: Return,
        changes: list[tuple[str | None, Return]],
        now: datetime,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Write the return's next state and its events in one update, if nobody changed it since
        `before` was read (optimistic concurrency on `version`). None when someone did; else how to
        wake the outbox relay: `{"entries": outbox}` (the outbox as the write left it, claimed for
        this replica's relay), or `{}` when another replica's relay held the document."""
        final = changes[-1][1]
        events = events_of([(t, r) for t, r in changes if t is not None], now)
        fields: dict[str, Any] = {"$set": return_fields(final) | (extra or {})}
        if (offer := final.open_offer()) is not None:
            fields["$set"][OFFER_EXPIRES_AT] = offer.expires_at
        elif before.open_offer() is not None:
            fields["$unset"] = {OFFER_EXPIRES_AT: ""}
        expected = {"_id": before.return_id, "version": before.version}
        claim = self.outbox_claim() if events else {}
        if claim:
            doc = await self.returns.find_one_and_update(
                expected | self.outbox_claimable(),
                with_outbox(fields, events, claim=claim),
                projection={OUTBOX: 1},
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                self._remember(final)
                ops_metrics.transitions(e.type for e in events)
                return {"entries": list(doc.get(OUTBOX) or [])}
            # A version conflict, or (rarely) another replica's relay still publishing this return.
        result = await self.returns.update_one(expected, with_outbox(fields, events))
        if not result.matched_count:
            self._recent.pop(before.return_id, None)  # stale: the next transition reads it
            return None
        self._remember(final)
        ops_metrics.transitions(e.type for e in events)
        return {}

    async def list_returns(self, wanted: ReturnFilter, cursor: str | None, limit: int) -> Page[Return]:
        return await find_page(self.returns, return_criteria(wanted), cursor, limit, Return.model_validate, {OUTBOX: 0})

    # ---- deadlines ----------------------------------------------------------------------------

    async def due_for_reminder(
        self, now: datetime, until: datetime, limit: int, served: Collection[str]
    ) -> list[Return]:
        # Only in-policy requests: the reminder promises a platform authorization at the deadline.
        return await self._find(
            {
                "status": ReturnStatus.REQUESTED.value,
                "in_policy": True,
                "response_due_at": {"$gt": now, "$lte": until},
                "reminded_at": {"$exists": False},
                **NOT_SETTLED,
                **_served(served),
            },
            "response_due_at",
            limit,
        )

    async def past_response_deadline(self, now: datetime, limit: int, served: Collection[str]) -> list[Return]:
        return await self._find(
            {
                "status": ReturnStatus.REQUESTED.value,
                "in_policy": True,
                "response_due_at": {"$lte": now},
                **NOT_SETTLED,
                **_served(served),
            },
            "response_due_at",
            limit,
        )

    async def past_ship_by(self, now: datetime, limit: int, served: Collection[str]) -> list[Return]:
        return await self._find(
            {
                "status": ReturnStatus.AUTHORIZED.value,
                "authorization.returnless": False,
                "ship_by": {"$lte": now},
                **NOT_SETTLED,
                **_served(served),
            },
            "ship_by",
            limit,
        )

    async def offers_past_expiry(self, now: datetime, limit: int, served: Collection[str]) -> list[Return]:
        return await self._find({OFFER_EXPIRES_AT: {"$lte": now}, **_served(served)}, OFFER_EXPIRES_AT, limit)

    async def _find(self, query: dict[str, Any], field: str, limit: int) -> list[Return]:
        cursor = self.returns.find(query, {"outbox": 0}).sort(field, ASCENDING).limit(limit)
        return [Return.model_validate(doc) async for doc in cursor]


def _served(codes: Collection[str]) -> dict[str, Any]:
    """The deadline queries' filter on the marketplaces served: a return of one removed from the file
    is never due, so a batch of them cannot fill the limit and stall the served ones behind it."""
    return {"marketplace": {"$in": sorted(codes)}}
