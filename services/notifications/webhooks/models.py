"""Webhook API shapes: endpoint registration and views, delivery log, replay requests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.events import EVENT_TYPES
from shared.moments import OUT_OF_RANGE, in_range

MAX_EVENT_TYPES = 100


class WebhookEndpointStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class WebhookDeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    HELD = "held"  # recorded while the endpoint was disabled: sent only when replayed


def _known_types(types: list[str]) -> list[str]:
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event type {unknown[0]!r}")
    return sorted(set(types))


class WebhookEndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="https URL the deliveries are POSTed to.")
    event_types: list[str] = Field(min_length=1, max_length=MAX_EVENT_TYPES, description="Event types to receive.")
    description: str | None = Field(default=None, max_length=500)

    _types = field_validator("event_types")(_known_types)


class WebhookEndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=MAX_EVENT_TYPES)
    description: str | None = Field(default=None, max_length=500)

    @field_validator("event_types")
    @classmethod
    def _types(cls, types: list[str] | None) -> list[str] | None:
        return None if types is None else _known_types(types)


class WebhookEndpoint(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str | None = None
    status: WebhookEndpointStatus
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    consecutive_failures: int = Field(default=0, description="Deliveries in a row that failed for good.")
    failing_since: datetime | None = Field(default=None, description="First failed attempt since the last success.")

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> WebhookEndpoint:
        fields = {k: doc.get(k) for k in cls.model_fields if k != "id" and doc.get(k) is not None}
        return cls(id=doc["_id"], **fields)


class WebhookEndpointCreated(WebhookEndpoint):
    secret: str = Field(description="The signing secret `whsec_...`; shown only now.")


class WebhookSecretRotated(BaseModel):
    secret: str = Field(description="The new signing secret `whsec_...`; shown only now.")
    previous_valid_until: datetime | None = Field(
        description="Until when the previous secret also signs deliveries (both signatures are sent)."
    )


class WebhookAttempt(BaseModel):
    at: datetime
    status_code: int | None = Field(default=None, description="The receiver's HTTP status; null when none came.")
    duration_ms: int
    error: str | None = None


class WebhookDelivery(BaseModel):
    id: str
    event_id: str
    event_type: str
    event_time: datetime
    status: WebhookDeliveryStatus
    attempts: list[WebhookAttempt]
    next_attempt_at: datetime | None = None
    created_at: datetime

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> WebhookDelivery:
        pending = doc["status"] == WebhookDeliveryStatus.PENDING
        return cls(
            id=doc["_id"],
            event_id=doc["event_id"],
            event_type=doc["event_type"],
            event_time=doc["event_time"],
            status=doc["status"],
            attempts=[WebhookAttempt(**a) for a in doc.get("attempts", [])],
            next_attempt_at=doc.get("next_attempt_at") if pending else None,
            created_at=doc["created_at"],
        )


class WebhookReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(default=None, min_length=1, max_length=128)
    since: datetime | None = Field(default=None, description="Events at or after this time (with `until`).")
    until: datetime | None = Field(default=None, description="Events before this time.")

    @model_validator(mode="after")
    def _one_way(self) -> WebhookReplayRequest:
        by_id, by_range = self.event_id is not None, self.since is not None or self.until is not None
        if by_id == by_range:
            raise ValueError("give either `event_id` or both `since` and `until`")
        if by_range and (self.since is None or self.until is None):
            raise ValueError("a time range needs both `since` and `until`")
        if by_range and self.since is not None and self.until is not None:
            if self.since.tzinfo is None or self.until.tzinfo is None:
                raise ValueError("`since` and `until` need a time zone")
            if in_range(self.since) is None or in_range(self.until) is None:
                raise ValueError(f"`since` and `until` {OUT_OF_RANGE}")
            if self.since >= self.until:
                raise ValueError("`since` must be before `until`")
        return self


class WebhookReplayed(BaseModel):
    queued: int = Field(description="Deliveries queued again.")
