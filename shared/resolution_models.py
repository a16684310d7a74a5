"""Settling a return other than by a refund on receipt (docs/product.md §12): the contract's shapes.

Replacements (`Return.resolution`, `Return.replacement`), keep-it offers (`Return.offers`,
`Return.settlement`), refunds to store credit (`Return.refund_to`, `StoreCreditEntry`) and the
disposition of each received line. Field meanings are a contract: add fields, never repurpose them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from shared.contract_base import Actor, Contract, Id, Party
from shared.money import Money


class Resolution(StrEnum):
    """What the buyer asks for: the money back, or the same item (or a sibling SKU) again."""

    REFUND = "refund"
    REPLACEMENT = "replacement"


class RefundDestination(StrEnum):
    """Where a return's refund goes: the card or account that paid, or the buyer's store credit."""

    ORIGINAL_PAYMENT = "original_payment"
    STORE_CREDIT = "store_credit"


class Disposition(StrEnum):
    """What the warehouse does with a received unit."""

    RESTOCK = "restock"
    REFURBISH = "refurbish"
    DISPOSE = "dispose"
    RETURN_TO_VENDOR = "return_to_vendor"


# ---- replacements ---------------------------------------------------------------------------


class ReplacementTiming(StrEnum):
    """When the seller's replacement ships: at authorization (seller-fault reasons only) or once the
    returned item is received."""

    AT_AUTHORIZATION = "at_authorization"
    AT_RECEIPT = "at_receipt"


class ReplacementStatus(StrEnum):
    REQUESTED = "requested"  # asked for; not yet ordered from the order system
    ORDERED = "ordered"  # `return.replacement_ordered`: the order system is to ship `lines`
    SHIPPED = "shipped"  # the order system confirmed the shipment (carrier, tracking)
    UNAVAILABLE = "unavailable"  # the seller cannot replace: the lines are refunded instead


class Variant(Contract):
    """Another SKU of the same listing (colour, size) the seller can send instead, at its price."""

    sku: Id
    title: str | None = None
    unit_price: Money


class ReplacementLine(Contract):
    line_id: Id
    sku: Id = Field(description="The SKU to send: the returned one, or another of the same listing at the same price.")
    quantity: int = Field(gt=0)


class Replacement(Contract):
    """The replacement a return asked for, and how far it got."""

    status: ReplacementStatus
    ships: ReplacementTiming
    lines: list[ReplacementLine]
    ordered_at: datetime | None = None
    shipped_at: datetime | None = None
    unavailable_at: datetime | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    note: str | None = None


# ---- keep-it offers -------------------------------------------------------------------------


class OfferStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"


class Offer(Contract):
    """A partial refund offered for the buyer to keep the item (before the item is received)."""

    offer_id: Id
    amount: Money = Field(description="Refunded if the buyer accepts; at most what the return's items are worth.")
    status: OfferStatus
    made_by: Actor
    made_at: datetime
    expires_at: datetime
    decided_at: datetime | None = Field(default=None, description="Accepted, declined or expired at.")
    note: str | None = None


class Settlement(Contract):
    """How a return was settled without the item coming back (an accepted keep-it offer)."""

    kept_item: bool
    offer_id: str | None = None
    amount: Money


# ---- store credit ---------------------------------------------------------------------------


class StoreCreditEntryKind(StrEnum):
    GRANT = "grant"
    DEBIT = "debit"


class StoreCreditEntry(Contract):
    """One movement of a buyer's store credit: data of `store_credit.granted` / `store_credit.debited`."""

    entry_id: Id
    kind: StoreCreditEntryKind
    buyer_id: Id
    buyer: Party | None = Field(default=None, description="Grants: the buyer, to tell them.")
    seller_id: str | None = Field(default=None, description="Grants: the seller whose refund it is.")
    amount: Money = Field(description="Credited (bonus included) or debited; always positive.")
    bonus: Money | None = Field(default=None, description="Grants: the marketplace's bonus included in `amount`.")
    balance: Money = Field(description="The buyer's balance in this currency after this entry.")
    refund_id: str | None = Field(default=None, description="Grants: the refund paid as credit.")
    return_id: str | None = None
    order_id: str | None = None
    reference: str | None = Field(default=None, description="Debits: the checkout's own reference.")
    note: str | None = Field(default=None, description="Debits: the caller's note.")
    actor: Actor
    at: datetime


class StoreCreditAccount(Contract):
    """`GET /v1/store-credit/{buyer_id}`: a balance per currency (zero balances left out)."""

    buyer_id: Id
    balances: list[Money] = Field(default_factory=list)
