"""Webhook endpoints and deliveries in MongoDB: `webhook_endpoints`, `webhook_deliveries`.

A delivery is one document per (endpoint, event): `_id` is `<endpoint id>:<event id>`, so a
redelivered event inserts nothing new. It keeps the event's JSON (what is POSTed, and what a replay
sends again) and every attempt. Claims use a lease on operational time; due-ness is business time.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument

from services.notifications.claiming import claim_due
from services.notifications.webhooks.models import WebhookDeliveryStatus, WebhookEndpointStatus
from shared.mongo import Database, insert_new
from shared.pagination import page_filter, page_sort

NEVER = datetime(1970, 1, 1, tzinfo=UTC)  # `claimed_until` of a delivery no one holds


def delivery_id(endpoint_id: str, event_id: str) -> str:
    return f"{endpoint_id}:{event_id}"


def new_delivery(
    endpoint: dict[str, Any], event_id: str, event_type: str, event_time: datetime, payload: str, now: datetime
) -> dict[str, Any]:
    enabled = endpoint["status"] == WebhookEndpointStatus.ENABLED
    return {
        "_id": delivery_id(endpoint["_id"], event_id),
        "endpoint_id": endpoint["_id"],
        "event_id": event_id,
        "event_type": event_type,
        "event_time": event_time,
        "payload": payload,
        "status": str(WebhookDeliveryStatus.PENDING if enabled else WebhookDeliveryStatus.HELD),
        "attempts": [],
        "tries": 0,
        "first_attempt_at": None,
        "next_attempt_at": now,
        "claimed_until": NEVER,
        "claim": None,
        "created_at": now,
        "updated_at": now,
    }


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self.endpoints = db["webhook_endpoints"]
        self.deliveries = db["webhook_deliveries"]

    async def ensure_indexes(self) -> None:
        await self.endpoints.create_index([("event_types", ASCENDING)])
        await self.endpoints.create_index([("created_at", DESCENDING)])
        await self.deliveries.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self.deliveries.create_index([("endpoint_id", ASCENDING), ("created_at", DESCENDING)])
        await self.deliveries.create_index([("endpoint_id", ASCENDING), ("event_time", ASCENDING)])
        await self.deliveries.create_index([("event_id", ASCENDING)])

    # ---- endpoints ------------------------------------------------------------------------------

    async def create_endpoint(self, doc: dict[str, Any]) -> None:
        await self.endpoints.insert_one(doc)

    async def endpoint(self, endpoint_id: str) -> dict[str, Any] | None:
        return await self.endpoints.find_one({"_id": endpoint_id})

    async def update_endpoint(self, endpoint_id: str, update: dict[str, Any]) -> dict[str, Any] | None:
        return await self.endpoints.find_one_and_update(
            {"_id": endpoint_id}, update, return_document=ReturnDocument.AFTER
        )

    async def replace_secrets(
        self, endpoint_id: str, seen_rev: str | None, secrets: list[dict[str, Any]], now: datetime
    ) -> dict[str, Any] | None:
        """Set the endpoint's secrets if they are still those read at `seen_rev` (its `secrets_rev`,
        None before the first rotation); None when another rotation came first or it is gone."""
        return await self.endpoints.find_one_and_update(
            {"_id": endpoint_id, "secrets_rev": seen_rev},
            {"$set": {"secrets": secrets, "secrets_rev": uuid.uuid4().hex, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        deleted = await self.endpoints.delete_one({"_id": endpoint_id})
        if deleted.deleted_count:
            await self.deliveries.delete_many({"endpoint_id": endpoint_id})
        return bool(deleted.deleted_count)

    async def page_endpoints(self, cursor: str | None, limit: int) -> list[dict[str, Any]]:
        found = self.endpoints.find(page_filter(cursor))
        return [doc async for doc in found.sort(page_sort()).limit(limit + 1)]

    async def subscribed(self, event_type: str) -> list[dict[str, Any]]:
        """Endpoints subscribed to `event_type` (the consumer, per event of a bound type)."""
        return [doc async for doc in self.endpoints.find({"event_types": event_type})]

    async def subscribed_types(self) -> set[str]:
        """Every type some endpoint subscribes to (the bindings' reconcile: a periodic walk)."""
        found = self.endpoints.find({}, {"event_types": 1})
        return {t async for doc in found for t in doc.get("event_types", [])}

    async def disable(self, endpoint_id: str, now: datetime, reason: str) -> bool:
        result = await self.endpoints.update_one(
            {"_id": endpoint_id, "status": str(WebhookEndpointStatus.ENABLED)},
            {
                "$set": {
                    "status": str(WebhookEndpointStatus.DISABLED),
                    "disabled_at": now,
                    "disabled_reason": reason,
                    "updated_at": now,
                }
            },
        )
        return result.modified_count == 1

    # ---- deliveries ------------------------------------------------------------------------------

    async def record(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert the deliveries not yet recorded; returns the new ones."""
        return await insert_new(self.deliveries, docs)

    async def claim(
        self, due_by: datetime, lease_now: datetime, lease: timedelta, delivery: str | None = None
    ) -> dict[str, Any] | None:
        """Take a pending delivery due by `due_by` for `lease` (by `_id`, or the one due first)."""
        update = {"$set": {"claim": uuid.uuid4().hex, "claimed_until": lease_now + lease}}
        return await claim_due(self.deliveries, due_by, lease_now, update, delivery)

    async def settle(self, doc: dict[str, Any], update: dict[str, Any]) -> bool:
        """Record an attempt's outcome if the claim is still ours."""
        result = await self.deliveries.update_one({"_id": doc["_id"], "claim": doc["claim"]}, update)
        return result.matched_count == 1

    async def note_attempt(self, delivery: str, attempt: dict[str, Any]) -> None:
        """Log an attempt whose claim was taken over (a replay, a lapsed lease): its outcome is not ours."""
        await self.deliveries.update_one({"_id": delivery}, {"$push": {"attempts": attempt}})

    async def delivery(self, delivery: str) -> dict[str, Any] | None:
        return await self.deliveries.find_one({"_id": delivery})

    async def any_delivery_of(self, event_id: str) -> dict[str, Any] | None:
        """Some endpoint's delivery of this event (its JSON, for a replay to another endpoint)."""
        return await self.deliveries.find_one({"event_id": event_id})

    async def page_deliveries(self, endpoint_id: str, cursor: str | None, limit: int) -> list[dict[str, Any]]:
        conditions = [c for c in ({"endpoint_id": endpoint_id}, page_filter(cursor)) if c]
        query = {"$and": conditions} if len(conditions) > 1 else conditions[0]
        found = self.deliveries.find(query, {"payload": 0})
        return [doc async for doc in found.sort(page_sort()).limit(limit + 1)]

    async def requeue(self, query: dict[str, Any], now: datetime) -> int:
        """Deliveries matching `query` pending again, due now, a new retry window (their attempts kept).
        The replay takes over any claim: an attempt in flight then cannot settle (its `claim` no longer
        matches), so its outcome never overwrites the replay; it is only logged (`note_attempt`)."""
        result = await self.deliveries.update_many(
            query,
            {
                "$set": {
                    "claim": uuid.uuid4().hex,  # nobody's: the next claim takes a new one
                    "claimed_until": NEVER,
                    "status": str(WebhookDeliveryStatus.PENDING),
                    "next_attempt_at": now,
                    "first_attempt_at": None,
                    "tries": 0,
                    "updated_at": now,
                }
            },
        )
        return result.modified_count

    async def requeue_range(self, endpoint_id: str, since: datetime, until: datetime, now: datetime) -> int:
        return await self.requeue({"endpoint_id": endpoint_id, "event_time": {"$gte": since, "$lt": until}}, now)

    async def requeue_one(self, delivery: str, now: datetime) -> int:
        return await self.requeue({"_id": delivery}, now)
