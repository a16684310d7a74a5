"""Facts of the resolutions (docs/product.md §12): what a return fact keeps of its offers, replacement and
receipt, and one fact per store-credit entry. Pure: no I/O.

A return's offers, replacement and received lines come with every `return.*` event (event-carried
state), so they live in the return's fact and follow its version: a late or repeated
`return.offer_*` or `return.replacement_*` changes nothing a newer event did not already say.
A store-credit entry never changes once made: its fact is keyed by `entry_id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.models import Return
from shared.resolution_models import StoreCreditEntry


@dataclass(frozen=True)
class OfferMade:
    offer_id: str
    status: str
    amount: int
    currency: str
    made_at: datetime
    decided_at: datetime | None = None


@dataclass(frozen=True)
class ReceivedUnits:
    """Units of one receipt line: the SKU returned, how many came back, what the warehouse does with them."""

    sku: str
    quantity: int
    disposition: str | None = None


@dataclass(frozen=True)
class StoreCreditFact:
    entry_id: str
    kind: str
    buyer_id: str
    seller_id: str | None
    amount: int  # bonus included
    bonus: int
    currency: str
    at: datetime
    refund_id: str | None = None
    return_id: str | None = None


def resolution_fields(ret: Return) -> dict[str, Any]:
    """The ReturnFact fields that say how a return is being resolved."""
    replacement = ret.replacement
    skus = {line.line_id: line.sku for line in ret.lines}
    received = tuple(
        ReceivedUnits(
            sku=skus.get(line.line_id, line.line_id),
            quantity=line.quantity,
            disposition=None if line.disposition is None else str(line.disposition),
        )
        for line in (ret.receipt.lines if ret.receipt else ())
    )
    return dict(
        resolution=str(ret.resolution),
        replacement_status=None if replacement is None else str(replacement.status),
        replacement_shipped_at=None if replacement is None else replacement.shipped_at,
        replacement_unavailable_at=None if replacement is None else replacement.unavailable_at,
        replaced_at=ret.replaced_at,
        offers=tuple(
            OfferMade(
                offer_id=offer.offer_id,
                status=str(offer.status),
                amount=offer.amount.amount,
                currency=offer.amount.currency,
                made_at=offer.made_at,
                decided_at=offer.decided_at,
            )
            for offer in ret.offers
        ),
        received=received,
    )


def resolution_from_document(data: dict[str, Any]) -> dict[str, Any]:
    """The nested parts of a stored ReturnFact's resolution fields as dataclasses (absent: a fact from before)."""
    return {
        "offers": tuple(OfferMade(**offer) for offer in data.get("offers", ())),
        "received": tuple(ReceivedUnits(**line) for line in data.get("received", ())),
    }


def store_credit_fact(entry: StoreCreditEntry) -> StoreCreditFact:
    return StoreCreditFact(
        entry_id=entry.entry_id,
        kind=str(entry.kind),
        buyer_id=entry.buyer_id,
        seller_id=entry.seller_id,
        amount=entry.amount.amount,
        bonus=0 if entry.bonus is None else entry.bonus.amount,
        currency=entry.amount.currency,
        at=entry.at,
        refund_id=entry.refund_id,
        return_id=entry.return_id,
    )
