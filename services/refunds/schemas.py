"""Bodies of the refunds API and its list's filter."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from shared.models import Id, RefundStatus
from shared.money import Money


@dataclass(frozen=True)
class RefundFilter:
    """Which refunds a list shows: the caller's query narrowed to what they may see (None: any).

    The store turns it into its own criteria.
    """

    return_id: str | None = None
    order_id: str | None = None
    buyer_id: str | None = None
    seller_id: str | None = None
    status: RefundStatus | None = None


class RefundLineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_id: Id
    quantity: StrictInt = Field(ge=0, description="Units of the line to refund.")


class RefundRequest(BaseModel):
    """Refund a received return (`return_id`) or an order without a return (`order_id`).

    Without `lines` a return is refunded for everything received, an order for everything paid.
    """

    model_config = ConfigDict(extra="forbid")

    return_id: Id | None = None
    order_id: Id | None = None
    lines: list[RefundLineRequest] | None = Field(
        default=None, max_length=500, description="A partial refund: these lines and units only."
    )
    return_shipping_concession: Money | None = Field(
        default=None, description="Return only: replaces the computed return-shipping concession."
    )
    other_concession: Money | None = Field(default=None, description="Goodwill on top of the items.")
    refund_shipping: StrictBool = Field(default=False, description="Order only: also refund the outbound shipping.")
