"""The notification log in MongoDB: the only module that knows the collection's shape and indexes."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument

from services.notifications.claiming import claim_due
from services.notifications.decisions import is_superseded
from services.notifications.domain import NotificationStatus, claim_update, resend_update
from services.notifications.schemas import NotificationFilter
from shared.events import CloudEvent
from shared.mongo import NewDocuments
from shared.outbox_commit import CommitBatcher
from shared.outbox_writes import OUTBOX, Claims, commit_events
from shared.pagination import page_filter, page_sort
from shared.upserts import UpsertBatcher

COLLECTION = "notifications"
# The newest version of each return the service has recorded emails for: `{_id: return_id, version}`.
RETURN_VERSIONS = "return_versions"


def notification_criteria(wanted: NotificationFilter) -> dict[str, Any]:
    """The MongoDB filter of a list of notifications: each field that is set, all of them at once."""
    fields = (
        ("return_id", wanted.return_id),
        ("recipient_role", wanted.recipient_role),
        ("recipient_id", wanted.recipient_id),
        ("status", wanted.status),
    )
    return {name: str(value) for name, value in fields if value is not None}


class NotificationStore:
    def __init__(self, db: Any) -> None:
        self.collection = db[COLLECTION]
        self.return_versions = db[RETURN_VERSIONS]
        self._new = NewDocuments(self.collection)  # the emails of events handled at once, in one insert
        # Versions noted at once are written together (shared/upserts.py): `$max` commutes.
        self._versions = UpsertBatcher(self.return_versions)
        # The relay that publishes notification.* (the wiring sets it): an outcome with an event
        # claims the document for it. Unset: nothing is claimed, and the relay is woken by id.
        self.outbox_relay: Claims | None = None
        self._commits: CommitBatcher | None = None  # outcomes with events, written together

    async def ensure_indexes(self) -> None:
        # The rule "one email per (event, recipient, template), ever" is this index.
        await self.collection.create_index(
            [("event_id", ASCENDING), ("recipient_role", ASCENDING), ("template", ASCENDING)],
            unique=True,
            name="one_email_per_event_recipient_template",
        )
        await self.collection.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self.collection.create_index([("return_id", ASCENDING), ("created_at", DESCENDING)])
        await self.collection.create_index([("recipient_id", ASCENDING), ("created_at", DESCENDING)])
        await self.collection.create_index([("created_at", DESCENDING)])
        # `return_versions` is only ever read and written by `_id` (the return id): no other index.

    async def record(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert an event's new notifications (with those of other events recorded meanwhile: one
        command); returns those inserted (the others' (event, recipient, template) already exists:
        a redelivered event)."""
        return await self._new.insert(docs)

    async def note_version(self, return_id: str, version: int) -> None:
        """Remember that emails are being recorded for `version` of this return, if it is the newest.

        `$max` keeps the highest version whatever the order events arrive in, and a redelivered
        event changes nothing: one upsert by `_id`.
        """
        await self._versions.upsert({"_id": return_id}, {"$max": {"version": version}})

    async def superseded(self, return_id: str, version: int) -> bool:
        """Have emails already been recorded for a later version of this return? One read by `_id`."""
        seen = await self.return_versions.find_one({"_id": return_id})
        return is_superseded(None if seen is None else seen.get("version"), version)

    async def claim(
        self, due_by: datetime, lease_now: datetime, lease: timedelta, notification_id: str | None = None
    ) -> dict[str, Any] | None:
        """Take an email due by `due_by` for `lease`; an expired claim (a crash) is taken over.

        With `notification_id`, that email (found by `_id`: a retry this process scheduled, a
        resend); without, the one due first (a query over the log: the dispatcher's rare poll).
        The claim also records that an attempt starts (`domain.claim_update`), in the same write.
        Due-ness is business time; the lease is operational time (`lease_now`), so moving the
        business clock never makes a claim in flight look expired.
        """
        update = claim_update(uuid.uuid4().hex, due_by, lease_now, lease)
        return await claim_due(self.collection, due_by, lease_now, update, notification_id)

    async def renew(self, notification_id: str, claim: str, until: datetime) -> bool:
        """Extend a claim in flight (the heartbeat); False when it is no longer ours."""
        result = await self.collection.update_one(
            {"_id": notification_id, "claim": claim}, {"$set": {"claimed_until": until}}
        )
        return result.matched_count == 1

    async def settle(
        self, doc: dict[str, Any], update: dict[str, Any], events: list[CloudEvent]
    ) -> dict[str, Any] | None:
        """Apply an attempt's outcome and its events in one write, if the claim is still ours: None
        when it is not; else how to wake the outbox relay (`shared.outbox_writes.commit_events`).

        An email whose outbox was empty when claimed (nearly all: only a resend claimed before the
        relay released its first outcome holds one) has its outcome written together with the
        others settling meanwhile (shared/outbox_commit.py): only the claim's holder adds events."""
        expected = {"_id": doc["_id"], "claim": doc["claim"]}
        relay = self.outbox_relay
        if not events or relay is None or doc.get(OUTBOX):
            return await commit_events(self.collection, expected, update, events, relay)
        if self._commits is None or self._commits.relay is not relay:
            self._commits = CommitBatcher(self.collection, relay)
        return await self._commits.commit(expected, update, events)

    async def get(self, notification_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": notification_id}, {"outbox": 0})

    async def resend(self, notification_id: str, now: datetime, actor_id: str) -> dict[str, Any] | None:
        """Back to pending as a new generation; None unless it was sent or failed."""
        # No projection: FerretDB's findAndModify does not support one.
        return await self.collection.find_one_and_update(
            {"_id": notification_id, "status": {"$in": [str(NotificationStatus.SENT), str(NotificationStatus.FAILED)]}},
            resend_update(now, actor_id),
            return_document=ReturnDocument.AFTER,
        )

    async def page(self, wanted: NotificationFilter, cursor: str | None, limit: int) -> list[dict[str, Any]]:
        """Up to `limit + 1` notifications matching `wanted`, newest first, after `cursor`."""
        conditions = [c for c in (notification_criteria(wanted), page_filter(cursor)) if c]
        query = {"$and": conditions} if len(conditions) > 1 else conditions[0] if conditions else {}
        found = self.collection.find(query, {"outbox": 0, "html": 0, "text": 0})
        return [doc async for doc in found.sort(page_sort()).limit(limit + 1)]
