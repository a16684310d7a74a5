"""The only module of the claims and feedback that knows MongoDB: `claims` and `seller_feedback`,
each document carrying its own events (shared/outbox_writes.py).

One open claim per order without transactions: an order's claims hold the slots 1, 2, 3... of the
unique key (order_id, order_seq). A new claim is checked against every claim before it and takes
the next slot; two racing requests for the same order want the same slot, so one insert is refused
and its request checks again, now seeing the other's open claim. One feedback per order: a unique
index on `order_id`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING

from services.disputes.schemas import ClaimFilter, FeedbackFilter
from shared import ops_metrics
from shared.dispute_models import Claim, ClaimStatus, SellerFeedback
from shared.events import CloudEvent, new_event
from shared.mongo import Database, DuplicateKeyError
from shared.outbox_writes import OUTBOX, Claims, commit_events, outbox_fields
from shared.page_query import find_page
from shared.pagination import Page

SERVICE = "disputes"
_CLAIM_DATES = ("filed_at", "respond_by", "created_at", "updated_at")

__all__ = ["ClaimsStore", "DuplicateKeyError"]


def claim_fields(claim: Claim) -> dict[str, Any]:
    fields = claim.model_dump(mode="json")
    for name in _CLAIM_DATES:  # real dates, so deadlines can be range-queried and pages sorted
        fields[name] = getattr(claim, name)
    return fields


def feedback_fields(feedback: SellerFeedback) -> dict[str, Any]:
    # `created_at` is what pages are sorted by (shared.pagination), the same instant as `left_at`.
    return feedback.model_dump(mode="json") | {"left_at": feedback.left_at, "created_at": feedback.left_at}


def events_of(
    event_types: Sequence[str], subject: str, data: Claim | SellerFeedback, now: datetime
) -> list[CloudEvent]:
    return [
        new_event(t, service=SERVICE, subject=subject, data=data, sequence=data.version, time=now) for t in event_types
    ]


def claim_criteria(wanted: ClaimFilter) -> dict[str, Any]:
    """The MongoDB filter of a list of claims: each field that is set, all of them at once."""
    fields = (
        ("order_id", wanted.order_id),
        ("buyer.id", wanted.buyer_id),
        ("seller.id", wanted.seller_id),
        ("status", wanted.status.value if wanted.status else None),
    )
    return {name: value for name, value in fields if value is not None}


def feedback_criteria(wanted: FeedbackFilter) -> dict[str, Any]:
    fields = (("order_id", wanted.order_id), ("buyer_id", wanted.buyer_id), ("seller_id", wanted.seller_id))
    return {name: value for name, value in fields if value is not None}


class ClaimsStore:
    def __init__(self, db: Database) -> None:
        self.claims = db["claims"]
        self.feedback = db["seller_feedback"]
        # The relay publishing these collections' events (the wiring sets it): a commit claims its
        # document for it. Unset: commits claim nothing, and the relay is woken by id.
        self.outbox_relay: Claims | None = None

    async def ensure_indexes(self) -> None:
        # The slots of an order's claims (see the module docstring); also how a list by order is served.
        await self.claims.create_index([("order_id", ASCENDING), ("order_seq", ASCENDING)], unique=True)
        await self.claims.create_index([("buyer.id", ASCENDING), ("created_at", DESCENDING)])
        await self.claims.create_index([("seller.id", ASCENDING), ("created_at", DESCENDING)])
        await self.claims.create_index([("created_at", DESCENDING)])
        # The deadline job, and a list by status.
        await self.claims.create_index([("status", ASCENDING), ("respond_by", ASCENDING)])
        await self.feedback.create_index([("order_id", ASCENDING)], unique=True)
        await self.feedback.create_index([("seller_id", ASCENDING), ("created_at", DESCENDING)])
        await self.feedback.create_index([("buyer_id", ASCENDING), ("created_at", DESCENDING)])
        await self.feedback.create_index([("created_at", DESCENDING)])

    def _claim(self) -> dict[str, Any]:
        return self.outbox_relay.claim() if self.outbox_relay is not None else {}

    # ---- claims -------------------------------------------------------------------------------

    async def get_claim(self, claim_id: str) -> Claim | None:
        doc = await self.claims.find_one({"_id": claim_id}, {OUTBOX: 0})
        return None if doc is None else Claim.model_validate(doc)

    async def claims_of_order(self, order_id: str) -> tuple[list[Claim], int]:
        """The order's claims and the next free slot, read slot by slot on the unique key (never a
        query over the collection: the embedded server would scan). No claim is ever deleted."""
        found: list[Claim] = []
        while doc := await self.claims.find_one({"order_id": order_id, "order_seq": len(found) + 1}, {OUTBOX: 0}):
            found.append(Claim.model_validate(doc))
        return found, len(found) + 1

    async def insert_claim(self, claim: Claim, order_seq: int, events: Sequence[str]) -> list[dict[str, Any]]:
        """The new claim with its events; answers its outbox (for the relay). DuplicateKeyError when
        its id (a retried request) or the order's slot (a concurrent request) is taken."""
        doc = {
            "_id": claim.claim_id,
            **claim_fields(claim),
            "order_seq": order_seq,
            **outbox_fields(events_of(events, claim.claim_id, claim, claim.created_at), claim=self._claim()),
        }
        await self.claims.insert_one(doc)
        ops_metrics.transitions(events)
        return list(doc[OUTBOX])

    async def commit_claim(
        self, before: Claim, after: Claim, events: Sequence[str], now: datetime
    ) -> dict[str, Any] | None:
        """Write the claim's next state and its events in one update, if it is still at `before`'s
        version: None when it is not; else how to wake the relay (shared.outbox_writes.commit_events)."""
        handover = await commit_events(
            self.claims,
            {"_id": before.claim_id, "version": before.version},
            {"$set": claim_fields(after)},
            events_of(events, after.claim_id, after, now),
            self.outbox_relay,
        )
        if handover is not None:
            ops_metrics.transitions(events)
        return handover

    async def list_claims(self, wanted: ClaimFilter, cursor: str | None, limit: int) -> Page[Claim]:
        return await find_page(self.claims, claim_criteria(wanted), cursor, limit, Claim.model_validate, {OUTBOX: 0})

    # ---- deadlines ----------------------------------------------------------------------------

    async def due_for_reminder(
        self, now: datetime, until: datetime, limit: int, marketplace: dict[str, Any] | None = None
    ) -> list[Claim]:
        """Open claims not yet reminded whose deadline is in (now, until]; `marketplace`: a filter on
        it (`{"$in": [...]}`), for marketplaces whose reminder lead differs (DisputeRules.reminder_sweeps)."""
        query: dict[str, Any] = {"reminded": False, "respond_by": {"$gt": now, "$lte": until}}
        if marketplace is not None:
            query["marketplace"] = marketplace
        return await self._open_by_deadline(query, limit)

    async def past_deadline(self, now: datetime, limit: int) -> list[Claim]:
        return await self._open_by_deadline({"respond_by": {"$lte": now}}, limit)

    async def count_past_deadline(self, now: datetime, cap: int = 10_000) -> int:
        """Open claims past their deadline, at most `cap` (`past_deadline`'s query, ids only; for the
        `claims_open_past_deadline` gauge, refreshed on scrape)."""
        found = self.claims.find({"status": ClaimStatus.OPEN.value, "respond_by": {"$lte": now}}, {"_id": 1})
        return len([doc async for doc in found.sort("respond_by", ASCENDING).limit(cap)])

    async def _open_by_deadline(self, query: dict[str, Any], limit: int) -> list[Claim]:
        found = self.claims.find({"status": ClaimStatus.OPEN.value, **query}, {OUTBOX: 0})
        return [Claim.model_validate(doc) async for doc in found.sort("respond_by", ASCENDING).limit(limit)]

    # ---- seller feedback ----------------------------------------------------------------------

    async def get_feedback(self, feedback_id: str) -> SellerFeedback | None:
        doc = await self.feedback.find_one({"_id": feedback_id}, {OUTBOX: 0})
        return None if doc is None else SellerFeedback.model_validate(doc)

    async def feedback_of_order(self, order_id: str) -> tuple[SellerFeedback, str | None] | None:
        """The order's feedback and the request key that left it (unique key `order_id`)."""
        doc = await self.feedback.find_one({"order_id": order_id}, {OUTBOX: 0})
        return None if doc is None else (SellerFeedback.model_validate(doc), doc.get("request"))

    async def insert_feedback(self, feedback: SellerFeedback, request: str | None) -> list[dict[str, Any]]:
        """DuplicateKeyError when the order has feedback already. `request` names the request that
        left it (caller and Idempotency-Key), so its retry finds it."""
        events = events_of(["feedback.left"], feedback.feedback_id, feedback, feedback.left_at)
        doc = {
            "_id": feedback.feedback_id,
            **feedback_fields(feedback),
            "request": request,
            **outbox_fields(events, claim=self._claim()),
        }
        await self.feedback.insert_one(doc)
        return list(doc[OUTBOX])

    async def commit_feedback(
        self, before: SellerFeedback, after: SellerFeedback, events: Sequence[str], now: datetime
    ) -> dict[str, Any] | None:
        return await commit_events(
            self.feedback,
            {"_id": before.feedback_id, "version": before.version},
            {"$set": feedback_fields(after)},
            events_of(events, after.feedback_id, after, now),
            self.outbox_relay,
        )

    async def list_feedback(self, wanted: FeedbackFilter, cursor: str | None, limit: int) -> Page[SellerFeedback]:
        criteria = feedback_criteria(wanted)
        return await find_page(self.feedback, criteria, cursor, limit, SellerFeedback.model_validate, {OUTBOX: 0})
