"""Returns settled other than by a refund on receipt, as the refunds service receives them: an
accepted keep-it offer, a replacement (unit and integration tests)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shared.models import Actor, Order, Return
from shared.money import Money
from shared.resolution_models import (
    Offer,
    OfferStatus,
    RefundDestination,
    Replacement,
    ReplacementLine,
    ReplacementStatus,
    ReplacementTiming,
    Resolution,
    Settlement,
)
from tests.unit.refunds.builders import RECEIVED, make_return, unique


def offer_accepted(
    order: Order,
    amount: int,
    *,
    offer_id: str | None = None,
    refund_to: RefundDestination = RefundDestination.ORIGINAL_PAYMENT,
    version: int = 4,
    **return_fields: Any,
) -> Return:
    """`return.offer_accepted` data: an authorized (not received) return whose buyer accepted the
    seller's offer of `amount` to keep the item. Lines as make_return's (default L1 × 1)."""
    offer_id = offer_id or unique("ofr")
    lines = return_fields.pop("lines", (("L1", 1, "NOT_AS_DESCRIBED"),))
    ret = make_return(order, *lines, status="authorized", version=version, **return_fields)
    money = Money(amount=amount, currency=order.currency)
    made = RECEIVED - timedelta(days=2)
    offer = Offer(
        offer_id=offer_id,
        amount=money,
        status=OfferStatus.ACCEPTED,
        made_by=Actor(role="seller", id=order.seller.id),
        made_at=made,
        expires_at=made + timedelta(hours=72),
        decided_at=RECEIVED - timedelta(days=1),
        note="Keep it; here is something back for the scratch.",
    )
    return ret.model_copy(
        update={
            "received_at": None,
            "refund_due_at": None,
            "receipt": None,
            "refund_to": refund_to,
            "offers": [offer],
            "settlement": Settlement(kept_item=True, offer_id=offer_id, amount=money),
        }
    )


def replacing(ret: Return, status: ReplacementStatus = ReplacementStatus.REQUESTED) -> Return:
    """The return asked for a replacement of its lines (the same SKUs), which got to `status`; a
    replacing return has no refund deadline at receipt, an unavailable one has (returns sets it)."""
    replacement = Replacement(
        status=status,
        ships=ReplacementTiming.AT_RECEIPT,
        lines=[ReplacementLine(line_id=line.line_id, sku=line.sku, quantity=line.quantity) for line in ret.lines],
        unavailable_at=ret.updated_at if status == ReplacementStatus.UNAVAILABLE else None,
    )
    lines = [line.model_copy(update={"replacement_sku": line.sku}) for line in ret.lines]
    update: dict[str, Any] = {"resolution": Resolution.REPLACEMENT, "replacement": replacement, "lines": lines}
    if status != ReplacementStatus.UNAVAILABLE:
        update["refund_due_at"] = None
    return ret.model_copy(update=update)
