"""The CloudEvents 1.0 envelope and the registry of every event type: the one contract."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.models import BuyerFlag, Notification, Order, Refund, Return

EXCHANGE = "returns.events"
ORDERS_EXCHANGE = "orders.events"
SCHEMA_VERSION = 1

# event type -> model of its `data`. Routing key = event type.
DATA_MODELS: dict[str, type[BaseModel]] = {
    "order.delivered": Order,
    "return.created": Return,
    "return.authorized": Return,
    "return.rejected": Return,
    "return.closed": Return,
    "return.shipped": Return,
    "return.received": Return,
    "return.expired": Return,
    "return.feedback_received": Return,
    "return.refunded": Refund,
    "seller.response_due_soon": Return,
    "refund.issued": Refund,
    "refund.failed": Refund,
    "buyer.flagged": BuyerFlag,
    "buyer.unflagged": BuyerFlag,
    "notification.sent": Notification,
    "notification.failed": Notification,
}


class UnknownEventType(ValueError):
    pass


def dataschema(event_type: str) -> str:
    return f"urn:returns-platform:events:{event_type}:v{SCHEMA_VERSION}"


class CloudEvent(BaseModel):
    """CloudEvents 1.0 structured JSON; `id` is also the AMQP message_id."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    time: datetime
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = None
    sequence: int = Field(default=0, ge=0, description="The aggregate's version, for ordering.")
    data: dict[str, Any]

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time must carry a UTC offset")
        return value.astimezone(UTC)

    def typed(self) -> BaseModel:
        """The `data` parsed as this event type's model."""
        model = DATA_MODELS.get(self.type)
        if model is None:
            raise UnknownEventType(self.type)
        return model.model_validate(self.data)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, body: bytes | str) -> CloudEvent:
        return cls.model_validate_json(body)


def new_event(event_type: str, *, service: str, subject: str, data: BaseModel, sequence: int,
              time: datetime, event_id: str | None = None) -> CloudEvent:
    """Build the envelope for `data` (the aggregate's full current state)."""
    if event_type not in DATA_MODELS:
        raise UnknownEventType(event_type)
    return CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source=f"/services/{service}",
        type=event_type,
        time=time,
        subject=subject,
        dataschema=dataschema(event_type),
        sequence=sequence,
        data=data.model_dump(mode="json"),
    )
