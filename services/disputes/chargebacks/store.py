"""The only module of chargebacks that knows MongoDB: chargebacks (with their outbox) and webhook deliveries.

A chargeback document is the Chargeback plus, while evidence is being submitted, `submission`:
the evidence, who sent it, the gateway idempotency key and a lease (`lease_until`, business
clock). It is written before the gateway is called and removed in the write that records the
gateway's answer, so a crash in between leaves it for the retry job (the call is idempotent on
the gateway by its key). `stripe_deliveries` holds one document per Stripe event id: the
signature timestamps seen (an exact replay is refused) and when it was handled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.dispute_models import Chargeback, ChargebackCategory, ChargebackStatus, Evidence
from shared.events import CloudEvent, new_event
from shared.models import Actor
from shared.outbox_writes import OUTBOX, Claims, commit_events, outbox_fields
from shared.page_query import find_page
from shared.pagination import Page

SERVICE = "disputes"
SUBMISSION = "submission"


@dataclass(frozen=True)
class Submission:
    """Evidence on its way to the gateway (recorded before the call)."""

    evidence: Evidence
    actor: Actor
    automatic: bool
    key: str  # the gateway's idempotency key
    lease_until: datetime  # until then, whoever recorded it is calling; after, the retry job may

    def fields(self) -> dict[str, Any]:
        return {
            "evidence": self.evidence.model_dump(mode="json"),
            "actor": self.actor.model_dump(mode="json"),
            "automatic": self.automatic,
            "key": self.key,
            "lease_until": self.lease_until,
        }

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Submission:
        return cls(
            evidence=Evidence.model_validate(doc["evidence"]),
            actor=Actor.model_validate(doc["actor"]),
            automatic=doc["automatic"],
            key=doc["key"],
            lease_until=doc["lease_until"],
        )


@dataclass(frozen=True)
class ChargebackFilter:
    order_id: str | None = None
    seller_id: str | None = None
    status: ChargebackStatus | None = None
    category: ChargebackCategory | None = None

    def criteria(self) -> dict[str, Any]:
        fields = (
            ("order_id", self.order_id),
            ("seller.id", self.seller_id),
            ("status", self.status.value if self.status else None),
            ("category", self.category.value if self.category else None),
        )
        return {name: value for name, value in fields if value is not None}


def chargeback_fields(chargeback: Chargeback) -> dict[str, Any]:
    return chargeback.model_dump(mode="python")


def events_of(changes: Sequence[tuple[str, Chargeback]], now: datetime) -> list[CloudEvent]:
    return [
        new_event(event_type, service=SERVICE, subject=cb.chargeback_id, data=cb, sequence=cb.version, time=now)
        for event_type, cb in changes
    ]


def _stored(doc: dict[str, Any]) -> tuple[Chargeback, Submission | None]:
    submission = doc.get(SUBMISSION)
    return Chargeback.model_validate(doc), Submission.of(submission) if submission else None


class ChargebackStore:
    def __init__(self, db: Any) -> None:
        self.chargebacks = db["chargebacks"]
        self.deliveries = db["stripe_deliveries"]
        # The relay publishing the chargebacks' events (the wiring sets it): commits claim for it.
        self.outbox_relay: Claims | None = None

    async def ensure_indexes(self) -> None:
        for keys in (
            [("seller.id", ASCENDING), ("created_at", DESCENDING)],
            [("order_id", ASCENDING), ("created_at", DESCENDING)],
            [("created_at", DESCENDING)],
            [("status", ASCENDING), (f"{SUBMISSION}.lease_until", ASCENDING)],
        ):
            await self.chargebacks.create_index(keys)
        await self.deliveries.create_index([("received_at", ASCENDING)])

    # ---- webhook deliveries -----------------------------------------------------------------

    async def note_delivery(self, event_id: str, signed_at: int, now: datetime) -> bool | None:
        """Record a verified delivery of a Stripe event. None: this exact delivery (same event, same
        signature time) was seen before, a replay; True: the event was handled already; False: handle it."""
        try:
            before = await self.deliveries.find_one_and_update(
                {"_id": event_id, "signed_at": {"$ne": signed_at}},
                {"$push": {"signed_at": signed_at}, "$setOnInsert": {"received_at": now}},
                upsert=True,
                return_document=ReturnDocument.BEFORE,
            )
        except DuplicateKeyError:
            return None  # the document is there and holds this signature time
        return bool(before and before.get("handled_at"))

    async def delivery_handled(self, event_id: str, now: datetime) -> None:
        await self.deliveries.update_one({"_id": event_id}, {"$set": {"handled_at": now}})

    async def forget_deliveries(self, before: datetime) -> int:
        result = await self.deliveries.delete_many({"received_at": {"$lt": before}})
        return result.deleted_count

    # ---- chargebacks ------------------------------------------------------------------------

    async def get(self, chargeback_id: str) -> tuple[Chargeback, Submission | None] | None:
        doc = await self.chargebacks.find_one({"_id": chargeback_id}, {OUTBOX: 0})
        return None if doc is None else _stored(doc)

    async def insert(
        self, chargeback: Chargeback, events: Sequence[CloudEvent], submission: Submission | None = None
    ) -> list[dict[str, Any]] | None:
        """The new chargeback with its events (and a submission to make): its outbox as written, for
        the relay; None when it exists already (another delivery of its dispute)."""
        claim = self.outbox_relay.claim() if self.outbox_relay and events else None
        doc = {
            "_id": chargeback.chargeback_id,
            **chargeback_fields(chargeback),
            **({SUBMISSION: submission.fields()} if submission else {}),
            **outbox_fields(events, claim=claim),
        }
        try:
            await self.chargebacks.insert_one(doc)
        except DuplicateKeyError:
            return None
        return list(doc[OUTBOX])

    async def commit(
        self,
        before: Chargeback,
        after: Chargeback,
        events: Sequence[CloudEvent] = (),
        *,
        submission_key: str | None = None,
        unset_submission: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Write `after` and its events if the chargeback is still at `before`'s version (and, with
        `submission_key`, still has that submission; `extra`: fields of this service's own): None if
        not, else how to wake the relay."""
        expected: dict[str, Any] = {"_id": before.chargeback_id, "version": before.version}
        if submission_key is not None:
            expected[f"{SUBMISSION}.key"] = submission_key
        update: dict[str, Any] = {"$set": chargeback_fields(after) | (extra or {})}
        if unset_submission:
            update["$unset"] = {SUBMISSION: ""}
        return await commit_events(self.chargebacks, expected, update, events, self.outbox_relay)

    async def record_submission(self, chargeback: Chargeback, submission: Submission) -> bool:
        """Take the chargeback's one submission slot (at this version, none in flight)."""
        result = await self.chargebacks.update_one(
            {"_id": chargeback.chargeback_id, "version": chargeback.version, SUBMISSION: {"$exists": False}},
            {"$set": {SUBMISSION: submission.fields()}},
        )
        return result.modified_count == 1

    async def lease_submission(self, chargeback_id: str, key: str, now: datetime, until: datetime) -> bool:
        """Take over a submission whose lease ran out (its caller crashed, or the gateway was away)."""
        result = await self.chargebacks.update_one(
            {"_id": chargeback_id, f"{SUBMISSION}.key": key, f"{SUBMISSION}.lease_until": {"$lte": now}},
            {"$set": {f"{SUBMISSION}.lease_until": until}},
        )
        return result.modified_count == 1

    async def drop_submission(self, chargeback_id: str, key: str, error: str) -> None:
        """The gateway refused the evidence for good: free the slot, keep why."""
        await self.chargebacks.update_one(
            {"_id": chargeback_id, f"{SUBMISSION}.key": key},
            {"$unset": {SUBMISSION: ""}, "$set": {"submission_error": error}},
        )

    async def stalled_submissions(self, now: datetime, limit: int) -> list[str]:
        """Chargebacks whose evidence was recorded but not (known to be) submitted, lease run out."""
        cursor = self.chargebacks.find(
            {"status": ChargebackStatus.NEEDS_RESPONSE.value, f"{SUBMISSION}.lease_until": {"$lte": now}}, {"_id": 1}
        ).limit(limit)
        return [doc["_id"] async for doc in cursor]

    async def page(self, wanted: ChargebackFilter, cursor: str | None, limit: int) -> Page[Chargeback]:
        criteria = wanted.criteria()
        return await find_page(self.chargebacks, criteria, cursor, limit, Chargeback.model_validate, {OUTBOX: 0})
