"""Example data of the resolution events (docs/product.md §12) for docs/asyncapi.yaml: offers,
replacements and store credit. tools/contract_examples.py asks here first for these types."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from shared.models import (
    Actor,
    Authorization,
    ItemCondition,
    Party,
    Receipt,
    ReceivedLine,
    ReturnStatus,
)
from shared.money import Money
from shared.resolution_models import (
    Disposition,
    Offer,
    OfferStatus,
    Replacement,
    ReplacementLine,
    ReplacementStatus,
    ReplacementTiming,
    Resolution,
    Settlement,
    StoreCreditEntry,
    StoreCreditEntryKind,
)

OFFER_ID = "ofr_8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b"


def _usd(amount: int) -> Money:
    return Money(amount=amount, currency="USD")


def _offer(status: OfferStatus, made_at: datetime, decided_at: datetime | None) -> Offer:
    return Offer(
        offer_id=OFFER_ID,
        amount=_usd(1500),
        status=status,
        made_by=Actor(role="seller", id="s-7"),
        made_at=made_at,
        expires_at=made_at + timedelta(hours=72),
        decided_at=decided_at,
        note="Keep the headphones and we refund $15.00 for the scratch.",
    )


def _replacement(status: ReplacementStatus, at: datetime) -> Replacement:
    shipped = status in (ReplacementStatus.SHIPPED,)
    return Replacement(
        status=status,
        ships=ReplacementTiming.AT_AUTHORIZATION,
        lines=[ReplacementLine(line_id="l-1", sku="HP-BLK-01", quantity=1)],
        ordered_at=at - timedelta(hours=2) if status != ReplacementStatus.REQUESTED else None,
        shipped_at=at if shipped else None,
        unavailable_at=at if status == ReplacementStatus.UNAVAILABLE else None,
        carrier="UPS" if shipped else None,
        tracking_number="1Z999AA10123456799" if shipped else None,
    )


def return_steps(time: datetime, authorization: Authorization) -> dict[str, tuple[ReturnStatus, dict[str, Any]]]:
    """Event type -> the return's status and the parts of it that event adds (see contract_examples)."""
    made = time - timedelta(hours=5)
    authorized = {"authorization": authorization, "authorized_at": made, "responded_at": made}
    received = {
        "receipt": Receipt(
            lines=[
                ReceivedLine(
                    line_id="l-1",
                    quantity=1,
                    condition=ItemCondition.DAMAGED_IN_TRANSIT,
                    disposition=Disposition.DISPOSE,
                )
            ]
        ),
        "received_at": time - timedelta(hours=1),
    }

    def replacing(status: ReplacementStatus, at: datetime) -> dict[str, Any]:
        return {"resolution": Resolution.REPLACEMENT, "replacement": _replacement(status, at)}

    return {
        "return.offer_made": (
            ReturnStatus.AUTHORIZED,
            {**authorized, "offers": [_offer(OfferStatus.OPEN, time, None)]},
        ),
        "return.offer_accepted": (
            ReturnStatus.AUTHORIZED,
            {
                **authorized,
                "offers": [_offer(OfferStatus.ACCEPTED, made, time)],
                "settlement": Settlement(kept_item=True, offer_id=OFFER_ID, amount=_usd(1500)),
            },
        ),
        "return.offer_declined": (
            ReturnStatus.AUTHORIZED,
            {**authorized, "offers": [_offer(OfferStatus.DECLINED, made, time)]},
        ),
        "return.offer_expired": (
            ReturnStatus.AUTHORIZED,
            {**authorized, "offers": [_offer(OfferStatus.EXPIRED, time - timedelta(hours=72), time)]},
        ),
        "return.replacement_ordered": (
            ReturnStatus.AUTHORIZED,
            {**authorized, **replacing(ReplacementStatus.ORDERED, time + timedelta(hours=2))},
        ),
        "return.replacement_shipped": (
            ReturnStatus.AUTHORIZED,
            {**authorized, **replacing(ReplacementStatus.SHIPPED, time)},
        ),
        "return.replacement_unavailable": (
            ReturnStatus.RECEIVED,
            {
                **authorized,
                **received,
                **replacing(ReplacementStatus.UNAVAILABLE, time),
                "refund_due_at": time + timedelta(days=2),
            },
        ),
        "return.replaced": (
            ReturnStatus.REPLACED,
            {**authorized, **received, **replacing(ReplacementStatus.SHIPPED, time - timedelta(hours=3))},
        ),
    }


def example(model: type[BaseModel], event_type: str, time: datetime, buyer: Party) -> tuple[BaseModel, str] | None:
    """(data, subject) for a store-credit event; None for every other type."""
    if not issubclass(model, StoreCreditEntry):
        return None
    granted = event_type == "store_credit.granted"
    entry = StoreCreditEntry(
        entry_id="scg_rf_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e" if granted else "scd_4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d",
        kind=StoreCreditEntryKind.GRANT if granted else StoreCreditEntryKind.DEBIT,
        buyer_id=buyer.id,
        buyer=buyer if granted else None,
        seller_id="s-7" if granted else None,
        amount=_usd(6823) if granted else _usd(2500),
        bonus=_usd(325) if granted else None,
        balance=_usd(6823) if granted else _usd(4323),
        refund_id="rf_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e" if granted else None,
        return_id="ret_5f1c0a4e9b8d4e6f8a7b6c5d4e3f2a1b" if granted else None,
        order_id="ord-1001" if granted else None,
        reference=None if granted else "checkout-77f1",
        actor=Actor(role="platform", id="refunds") if granted else Actor(role="service", id="checkout"),
        at=time,
    )
    return entry, buyer.id
