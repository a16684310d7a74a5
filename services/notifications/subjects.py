"""What an email can be about: the kinds of event data the decision table reads, their parties and ids.

Returns and refunds carry both parties; a claim too; a chargeback only its seller (and that only
when its payment matched an order), never the buyer's name or address (`buyer_id` alone); a store
credit entry only its buyer (grants; a debit names `buyer_id` alone) and the seller's id.
"""

from __future__ import annotations

from typing import Any

from shared.dispute_models import Chargeback, Claim
from shared.models import Party, Refund, Return
from shared.resolution_models import StoreCreditEntry

# The data of every event type the table can send for.
EmailData = Return | Refund | Claim | Chargeback | StoreCreditEntry
DATA_KINDS: tuple[type, ...] = (Return, Refund, Claim, Chargeback, StoreCreditEntry)


def party(data: EmailData, role: str) -> Party | None:
    """The `role` party of `data`, None when `data` has none (a chargeback's buyer, an unknown seller)."""
    if role == "buyer":
        return None if isinstance(data, Chargeback) else data.buyer
    return None if isinstance(data, StoreCreditEntry) else data.seller


def marketplace(data: EmailData) -> str:
    """Whose calendar a reader without a time zone of their own reads times in ("" : UTC)."""
    # A store credit entry names no marketplace: its buyer's own zone, else UTC.
    return "" if isinstance(data, StoreCreditEntry) else data.marketplace or ""


def references(data: EmailData) -> dict[str, Any]:
    """The ids a notification record keeps of what it is about (ids only: no name, no address)."""
    return {
        # A return's (or its refund's) emails only: a claim about a return keeps its emails out of the
        # return's list (`GET /v1/notifications?return_id=`); they are found by claim_id.
        "return_id": data.return_id if isinstance(data, Return | Refund | StoreCreditEntry) else None,
        "refund_id": data.refund_id if isinstance(data, Refund | StoreCreditEntry) else None,
        "claim_id": data.claim_id if isinstance(data, Claim | Refund) else None,  # a refund paying a claim
        "chargeback_id": data.chargeback_id if isinstance(data, Chargeback) else None,
        "order_id": data.order_id,
        # Only Return data carries the return's version (Refund data carries the refund's, and so on).
        "return_version": data.version if isinstance(data, Return) else None,
    }
