"""HTTP shapes of the notifications API and its list's filter. No email address leaves through them: ids only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from services.notifications.domain import NotificationStatus


class RecipientRole(StrEnum):
    BUYER = "buyer"
    SELLER = "seller"


@dataclass(frozen=True)
class NotificationFilter:
    """Which notifications a list shows: the caller's query narrowed to what they may see (None: any).

    The store turns it into its own criteria.
    """

    return_id: str | None = None
    recipient_role: RecipientRole | None = None
    recipient_id: str | None = None
    status: NotificationStatus | None = None


class Attempt(BaseModel):
    at: datetime
    generation: int
    outcome: str = Field(
        description="sent, transient or permanent; interrupted: the sender stopped before "
        "recording an outcome (the server may have accepted the email)"
    )
    code: int | None = Field(default=None, description="SMTP reply code, when the server gave one")
    detail: str


class NotificationView(BaseModel):
    notification_id: str
    event_id: str
    event_type: str
    template: str
    recipient_role: RecipientRole
    recipient_id: str
    return_id: str | None
    refund_id: str | None
    claim_id: str | None = Field(default=None, description="The A-to-z claim the email is about, if any")
    chargeback_id: str | None = Field(default=None, description="The chargeback the email is about, if any")
    order_id: str
    locale: str
    subject: str
    status: NotificationStatus
    attempts: int = Field(description="SMTP attempts in the current generation")
    generation: int = Field(description="0 for the original email, +1 per resend")
    next_attempt_at: datetime | None = Field(description="When a pending email is tried next")
    smtp_message_id: str | None
    error: str | None
    attempt_log: list[Attempt]
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> NotificationView:
        fields = {name: doc.get(name) for name in cls.model_fields if name != "notification_id"}
        if doc.get("status") != NotificationStatus.PENDING:
            fields["next_attempt_at"] = None
        return cls(notification_id=doc["_id"], **fields)


class PreviewEmail(BaseModel):
    recipient_role: RecipientRole
    recipient_id: str
    template: str
    locale: str
    subject: str
    text: str
    html: str


class Preview(BaseModel):
    event_type: str
    emails: list[PreviewEmail] = Field(description="Empty when the event sends nothing")
