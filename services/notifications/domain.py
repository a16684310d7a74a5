"""A notification's life, as pure functions: its document, the outcome of an attempt, its events.

pending --sent--> sent
pending --transient failure--> pending (next attempt after a growing delay) ... --exhausted--> failed
pending --permanent failure--> failed
sent|failed --resend (agent)--> pending (new generation, new Message-ID)
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from services.notifications.rendering import PlannedEmail
from shared.events import CloudEvent, new_event
from shared.models import Notification, Refund, Return
from shared.observability import redact

SERVICE = "notifications"
NEVER_CLAIMED = datetime(1970, 1, 1, tzinfo=UTC)
ERROR_LIMIT = 500


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """What one SMTP attempt came to. `detail` never holds an address (see `clean_error`)."""

    kind: Literal["sent", "transient", "permanent"]
    code: int | None = None
    detail: str = ""


def clean_error(text: str) -> str:
    # SMTP servers like to quote the refused address back ("550 <ada@example.com>: unknown").
    return redact(" ".join(text.split()))[:ERROR_LIMIT]


def new_notification_id(now: datetime) -> str:
    """`ntf_` + creation time + randomness: ids sort by creation, which cursors rely on."""
    return f"ntf_{int(now.timestamp() * 1000):012x}{uuid.uuid4().hex[:16]}"


def message_id(notification_id: str, generation: int, domain: str) -> str:
    """Stable per notification and generation: a re-send after a crash is the same email."""
    return f"<{notification_id}.{generation}@{domain}>"


def new_notification(event: CloudEvent, data: Return | Refund, planned: PlannedEmail,
                     now: datetime) -> dict[str, Any]:
    """The document recorded before anything is sent; its unique key makes it one email ever."""
    email = planned.email
    return {
        "_id": new_notification_id(now),
        "event_id": event.id, "event_type": event.type, "template": planned.template,
        "recipient_role": planned.recipient_role, "recipient_id": planned.recipient.id,
        "recipient_email": str(planned.recipient.email),
        "return_id": data.return_id, "refund_id": data.refund_id if isinstance(data, Refund) else None,
        "order_id": data.order_id,
        # Only Return data carries the return's version (Refund data carries the refund's).
        "return_version": data.version if isinstance(data, Return) else None,
        "locale": email.locale, "subject": email.subject, "text": email.text, "html": email.html,
        "status": str(NotificationStatus.PENDING), "attempts": 0, "generation": 0,
        "next_attempt_at": now, "claimed_until": NEVER_CLAIMED, "claim": None,
        "smtp_message_id": None, "smtp_response": None, "error": None, "attempt_log": [],
        "created_at": now, "updated_at": now, "queued_at": now, "sent_at": None, "failed_at": None,
        "version": 1,
    }


def retry_delay(attempts: int, delays_ms: list[int]) -> timedelta | None:
    """Wait after the `attempts`-th transient failure; None once every delay is used up."""
    if attempts > len(delays_ms):
        return None
    return timedelta(milliseconds=delays_ms[attempts - 1])


def after_attempt(doc: dict[str, Any], outcome: Outcome, smtp_message_id: str, now: datetime,
                  delays_ms: list[int]) -> tuple[dict[str, Any], str | None]:
    """(update for the document, type of the event to publish or None) after one attempt."""
    attempts = doc["attempts"] + 1
    entry = {"at": now, "generation": doc["generation"], "outcome": outcome.kind, "code": outcome.code,
             "detail": outcome.detail}
    fields: dict[str, Any] = {"attempts": attempts, "updated_at": now, "claim": None,
                              "claimed_until": NEVER_CLAIMED}
    event_type: str | None = None
    if outcome.kind == "sent":
        fields |= {"status": str(NotificationStatus.SENT), "sent_at": now, "smtp_message_id": smtp_message_id,
                   "smtp_response": outcome.detail, "error": None}
        event_type = "notification.sent"
    else:
        delay = retry_delay(attempts, delays_ms) if outcome.kind == "transient" else None
        if delay is None:
            reason = outcome.detail if outcome.kind == "permanent" else \
                f"gave up after {attempts} attempts; last: {outcome.detail}"
            fields |= {"status": str(NotificationStatus.FAILED), "failed_at": now, "error": clean_error(reason)}
            event_type = "notification.failed"
        else:
            fields |= {"next_attempt_at": now + delay, "error": outcome.detail}
    # Bounded without $slice: at most len(delays)+1 attempts per generation.
    update = {"$set": fields, "$inc": {"version": 1}, "$push": {"attempt_log": entry}}
    return update, event_type


def applied(doc: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`doc` as `update` (from this module: $set and a version bump) leaves it."""
    return {**doc, **update["$set"], "version": doc["version"] + update["$inc"]["version"]}


def resend_update(now: datetime, actor_id: str) -> dict[str, Any]:
    return {"$set": {"status": str(NotificationStatus.PENDING), "attempts": 0, "next_attempt_at": now,
                     "claimed_until": NEVER_CLAIMED, "claim": None, "error": None, "queued_at": now,
                     "updated_at": now, "resent_by": actor_id},
            "$inc": {"generation": 1, "version": 1}}


def notification_event(event_type: str, doc: dict[str, Any], now: datetime) -> CloudEvent:
    """`notification.sent|failed` for `doc` as the update leaves it (ids only, no address)."""
    data = Notification(
        notification_id=doc["_id"], event_id=doc["event_id"], event_type=doc["event_type"],
        template=doc["template"], recipient_role=doc["recipient_role"], recipient_id=doc["recipient_id"],
        return_id=doc.get("return_id"), status=doc["status"], attempts=doc["attempts"],
        smtp_message_id=doc.get("smtp_message_id"), error=doc.get("error"), at=now)
    return new_event(event_type, service=SERVICE, subject=doc["_id"], data=data,
                     sequence=doc["version"], time=now)
