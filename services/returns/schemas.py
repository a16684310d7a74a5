"""Bodies the returns API accepts (strict: unknown fields and wrong types are refused) and its list's filter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from shared.models import (
    Disposition,
    Fault,
    Id,
    ItemCondition,
    LabelType,
    ReasonCode,
    RefundDestination,
    Resolution,
    ReturnStatus,
)
from shared.money import Money

Note = Annotated[str, StringConstraints(max_length=2000)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2048)]


class RejectionReason(StrEnum):
    OUTSIDE_RETURN_WINDOW = "OUTSIDE_RETURN_WINDOW"
    NON_RETURNABLE_ITEM = "NON_RETURNABLE_ITEM"
    ITEM_NOT_SOLD_BY_SELLER = "ITEM_NOT_SOLD_BY_SELLER"
    SUSPECTED_ABUSE = "SUSPECTED_ABUSE"
    ALREADY_REFUNDED = "ALREADY_REFUNDED"
    DUPLICATE_REQUEST = "DUPLICATE_REQUEST"
    OTHER = "OTHER"


class ClosureCode(StrEnum):
    BUYER_WITHDREW = "BUYER_WITHDREW"
    SETTLED_WITHOUT_RETURN = "SETTLED_WITHOUT_RETURN"
    REPLACEMENT_SENT = "REPLACEMENT_SENT"
    DUPLICATE_REQUEST = "DUPLICATE_REQUEST"
    OTHER = "OTHER"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestedLine(Body):
    line_id: Id
    quantity: StrictInt = Field(gt=0, le=100_000)
    reason_code: ReasonCode
    comment: Note | None = None
    replacement_sku: Id | None = Field(
        default=None,
        description="Resolution `replacement` only: the SKU to send, this line's own (the default) or one of "
        "its order line's `variants` at the same unit price.",
    )


class ReturnRequest(Body):
    order_id: Id
    lines: list[RequestedLine] = Field(min_length=1, max_length=200)
    resolution: Resolution = Field(
        default=Resolution.REFUND, description="`replacement`: the same item (or a variant) again instead of a refund."
    )
    refund_to: RefundDestination = Field(
        default=RefundDestination.ORIGINAL_PAYMENT, description="Where a refund goes: the payment or store credit."
    )
    policy_exception: StrictBool = Field(
        default=False, description="Agents only: accept a request outside the window or for a non-returnable category."
    )


class AuthorizeBody(Body):
    returnless: StrictBool = Field(default=False, description="Refund without the item coming back.")
    label_type: LabelType | None = Field(
        default=None, description="Defaults to prepaid when the seller pays, else unpaid."
    )
    carrier: Short | None = None
    tracking_number: Short | None = None
    label_url: Url | None = None
    return_shipping_paid_by: Fault | None = Field(
        default=None,
        description=(
            "Defaults to who owes the return postage: the seller when at fault or when its return address "
            "is abroad, else the buyer."
        ),
    )
    return_postage: Money | None = Field(default=None, description="Unpaid labels: postage the buyer pays.")
    instructions: Note | None = None
    note: Note | None = None


class RejectBody(Body):
    reason_code: RejectionReason
    note: Note | None = None


class CloseBody(Body):
    code: ClosureCode = Field(validation_alias=AliasChoices("code", "closure_code"))
    note: Note | None = None


class ShipBody(Body):
    carrier: Short
    tracking_number: Short
    note: Note | None = None


class ReceivedLineBody(Body):
    line_id: Id
    quantity: StrictInt = Field(ge=0, le=100_000)
    condition: ItemCondition
    disposition: Disposition | None = Field(
        default=None, description="What the warehouse does with these units; defaulted from the condition."
    )


class ReceiveBody(Body):
    lines: list[ReceivedLineBody] = Field(min_length=1, max_length=200)
    note: Note | None = None


class ReplacementBody(Body):
    """`PUT /v1/returns/{id}/replacement`: the order system's answer about the replacement."""

    status: Literal["shipped", "unavailable"]
    carrier: Short | None = Field(default=None, description="`shipped` only (required).")
    tracking_number: Short | None = Field(default=None, description="`shipped` only (required).")
    note: Note | None = None


class FeedbackBody(Body):
    resolved: StrictBool
    note: Note | None = None


@dataclass(frozen=True)
class ReturnFilter:
    """Which returns a list shows: the caller's query narrowed to what they may see (None: any).

    `created_from` is inclusive, `created_to` exclusive. The store turns it into its own criteria.
    """

    order_id: str | None = None
    buyer_id: str | None = None
    seller_id: str | None = None
    status: ReturnStatus | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
