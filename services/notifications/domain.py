"""A notification's life, as pure functions: its document, the outcome of an attempt, its events.

pending --sent--> sent
pending --transient failure--> pending (next attempt after a growing delay) ... --exhausted--> failed
pending --permanent failure--> failed
pending --a second interrupted attempt--> failed (not sent a third time; see below)
sent|failed --resend (agent)--> pending (new generation, new Message-ID)

Every attempt starts with a claim, which also records the attempt: a mark pushed onto `sending` in
the same single-document write. Settling the attempt (its outcome, in one write) empties `sending`.
So a claim that finds an earlier mark there knows an attempt was interrupted: its sender died (or
lost its lease) somewhere between the claim and recording the outcome, possibly after the SMTP
server accepted the email. Such an email is sent again with the same Message-ID, at most once per
generation: once two attempts were interrupted it is settled `failed` without sending, so it never
reaches anyone more than twice (see `next_step`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from services.notifications.rendering import PlannedEmail
from services.notifications.subjects import EmailData, references
from shared import tracing
from shared.events import CloudEvent, new_event
from shared.models import Notification
from shared.observability import redact

SERVICE = "notifications"
NEVER_CLAIMED = datetime(1970, 1, 1, tzinfo=UTC)
ERROR_LIMIT = 500


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Step(StrEnum):
    """What a sender does with the email it just claimed."""

    SEND = "send"  # the usual: nothing was interrupted
    RESEND = "resend"  # an earlier attempt was interrupted: the same email again (maybe a duplicate)
    GIVE_UP = "give_up"  # two attempts were interrupted: do not risk a third copy


# An interrupted attempt may have been delivered; resending after one keeps copies at two at most.
MAX_INTERRUPTED = 1
INTERRUPTED_DETAIL = (
    "no outcome recorded: the sender stopped mid-attempt (crash or lost lease); the server may have accepted the email"
)


@dataclass(frozen=True)
class Outcome:
    """What one SMTP attempt came to. `detail` never holds an address (see `clean_error`)."""

    kind: Literal["sent", "transient", "permanent"]
    code: int | None = None
    detail: str = ""


def clean_error(text: str) -> str:
    # SMTP servers like to quote the refused address back ("550 <ada@example.com>: unknown").
    return str(redact(" ".join(text.split())))[:ERROR_LIMIT]


def new_notification_id(now: datetime) -> str:
    """`ntf_` + creation time + randomness: ids sort by creation, which cursors rely on."""
    return f"ntf_{int(now.timestamp() * 1000):012x}{uuid.uuid4().hex[:16]}"


def message_id(notification_id: str, generation: int, domain: str) -> str:
    """Stable per notification and generation: a re-send after a crash is the same email."""
    return f"<{notification_id}.{generation}@{domain}>"


def new_notification(event: CloudEvent, data: EmailData, planned: PlannedEmail, now: datetime) -> dict[str, Any]:
    """The document recorded before anything is sent; its unique key makes it one email ever."""
    email = planned.email
    return {
        "_id": new_notification_id(now),
        "event_id": event.id,
        "event_type": event.type,
        "event_time": event.time,  # for the event->email latency (returns_platform_event_to_email_seconds)
        "template": planned.template,
        "recipient_role": planned.recipient_role,
        "recipient_id": planned.recipient.id,
        "recipient_email": str(planned.recipient.email),
        **references(data),  # return_id, refund_id, claim_id, chargeback_id, order_id, return_version
        "locale": email.locale,
        "subject": email.subject,
        "text": email.text,
        "html": email.html,
        "status": str(NotificationStatus.PENDING),
        "attempts": 0,
        "generation": 0,
        "next_attempt_at": now,
        "claimed_until": NEVER_CLAIMED,
        "claim": None,
        "sending": [],
        "interrupted": 0,
        "smtp_message_id": None,
        "smtp_response": None,
        "error": None,
        "attempt_log": [],
        "created_at": now,
        "updated_at": now,
        "queued_at": now,
        "sent_at": None,
        "failed_at": None,
        "version": 1,
        # The trace (and request) the email continues: its `traceparent` header, docs/subscribers.md.
        **tracing.clean(tracing.carried(event)),
        **({"requestid": event.requestid} if event.requestid else {}),
    }


def retry_delay(attempts: int, delays_ms: list[int]) -> timedelta | None:
    """Wait after the `attempts`-th transient failure; None once every delay is used up."""
    if attempts > len(delays_ms):
        return None
    return timedelta(milliseconds=delays_ms[attempts - 1])


def claim_update(claim: str, now: datetime, lease_now: datetime, lease: timedelta) -> dict[str, Any]:
    """Take a due email for `lease` (operational time) and record, at `now` (business time, like
    the attempt log), that an attempt starts: before anything is sent."""
    return {
        "$set": {"claimed_until": lease_now + lease, "claim": claim},
        "$push": {"sending": {"attempt_id": claim, "started_at": now}},
    }


def claimed(doc: dict[str, Any], claim: str, now: datetime, lease_now: datetime, lease: timedelta) -> dict[str, Any]:
    """`doc` as `claim_update` leaves it: a new email inserted already claimed, its attempt recorded."""
    update = claim_update(claim, now, lease_now, lease)
    return {**doc, **update["$set"], "sending": [*doc.get("sending", []), update["$push"]["sending"]]}


def interrupted_marks(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Attempts of a just-claimed `doc` that never settled (its own mark, the last, excluded)."""
    return list(doc.get("sending") or [])[:-1]


def next_step(doc: dict[str, Any]) -> Step:
    """For a just-claimed `doc`: send, send again after an interruption, or stop trying.

    Each interrupted attempt may have reached the recipient. After one, the email goes again (same
    generation, hence the same Message-ID and bytes: receivers that dedupe by Message-ID drop it);
    after two, it does not: the recipient may have it twice already.
    """
    interrupted = doc.get("interrupted", 0) + len(interrupted_marks(doc))
    if interrupted == 0:
        return Step.SEND
    return Step.RESEND if interrupted <= MAX_INTERRUPTED else Step.GIVE_UP


def _interrupted_entries(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "at": mark["started_at"],
            "generation": doc["generation"],
            "outcome": "interrupted",
            "code": None,
            "detail": INTERRUPTED_DETAIL,
        }
        for mark in interrupted_marks(doc)
    ]


def _settled_fields(now: datetime, attempts: int) -> dict[str, Any]:
    return {"attempts": attempts, "updated_at": now, "claim": None, "claimed_until": NEVER_CLAIMED, "sending": []}


def _settle_update(doc: dict[str, Any], fields: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    # Bounded without $slice: at most len(delays) + 1 + MAX_INTERRUPTED + 1 entries per generation.
    return {
        "$set": fields,
        "$inc": {"version": 1, "interrupted": len(interrupted_marks(doc))},
        "$push": {"attempt_log": {"$each": entries}},
    }


def given_up(doc: dict[str, Any], now: datetime) -> tuple[dict[str, Any], str]:
    """(update, event type) for a just-claimed `doc` whose `next_step` is GIVE_UP: failed, unsent."""
    entries = _interrupted_entries(doc)
    interrupted = doc.get("interrupted", 0) + len(entries)
    reason = (
        f"not sent again: {interrupted} attempts were interrupted before their outcome was recorded "
        "(the sender stopped mid-send); the recipient may have received it up to "
        f"{interrupted} times with the same Message-ID"
    )
    fields = _settled_fields(now, doc["attempts"] + len(entries)) | {
        "status": str(NotificationStatus.FAILED),
        "failed_at": now,
        "error": clean_error(reason),
    }
    return _settle_update(doc, fields, entries), "notification.failed"


def after_attempt(
    doc: dict[str, Any], outcome: Outcome, smtp_message_id: str, now: datetime, delays_ms: list[int]
) -> tuple[dict[str, Any], str | None]:
    """(update for the document, type of the event to publish or None) after one attempt.

    Attempts interrupted before it (`interrupted_marks`) are logged, and counted, with it.
    """
    entries = _interrupted_entries(doc)
    attempts = doc["attempts"] + len(entries) + 1
    entries.append(
        {
            "at": now,
            "generation": doc["generation"],
            "outcome": outcome.kind,
            "code": outcome.code,
            "detail": outcome.detail,
        }
    )
    fields = _settled_fields(now, attempts)
    event_type: str | None = None
    if outcome.kind == "sent":
        fields |= {
            "status": str(NotificationStatus.SENT),
            "sent_at": now,
            "smtp_message_id": smtp_message_id,
            "smtp_response": outcome.detail,
            "error": None,
        }
        event_type = "notification.sent"
    else:
        delay = retry_delay(attempts, delays_ms) if outcome.kind == "transient" else None
        if delay is None:
            reason = (
                outcome.detail
                if outcome.kind == "permanent"
                else f"gave up after {attempts} attempts; last: {outcome.detail}"
            )
            fields |= {"status": str(NotificationStatus.FAILED), "failed_at": now, "error": clean_error(reason)}
            event_type = "notification.failed"
        else:
            fields |= {"next_attempt_at": now + delay, "error": outcome.detail}
    return _settle_update(doc, fields, entries), event_type


def applied(doc: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`doc` as a settling `update` (from this module: $set, $inc, $push to attempt_log) leaves it."""
    after = {**doc, **update["$set"]}
    for name, step in update.get("$inc", {}).items():
        after[name] = doc.get(name, 0) + step
    if "attempt_log" in update.get("$push", {}):
        after["attempt_log"] = [*doc.get("attempt_log", []), *update["$push"]["attempt_log"]["$each"]]
    return after


def resend_update(now: datetime, actor_id: str) -> dict[str, Any]:
    return {
        "$set": {
            "status": str(NotificationStatus.PENDING),
            "attempts": 0,
            "next_attempt_at": now,
            "claimed_until": NEVER_CLAIMED,
            "claim": None,
            "sending": [],
            "interrupted": 0,
            "error": None,
            "queued_at": now,
            "updated_at": now,
            "resent_by": actor_id,
        },
        "$inc": {"generation": 1, "version": 1},
    }


def notification_event(event_type: str, doc: dict[str, Any], now: datetime) -> CloudEvent:
    """`notification.sent|failed` for `doc` as the update leaves it (ids only, no address)."""
    data = Notification(
        notification_id=doc["_id"],
        event_id=doc["event_id"],
        event_type=doc["event_type"],
        template=doc["template"],
        recipient_role=doc["recipient_role"],
        recipient_id=doc["recipient_id"],
        return_id=doc.get("return_id"),
        status=doc["status"],
        attempts=doc["attempts"],
        smtp_message_id=doc.get("smtp_message_id"),
        error=doc.get("error"),
        at=now,
    )
    return new_event(event_type, service=SERVICE, subject=doc["_id"], data=data, sequence=doc["version"], time=now)
