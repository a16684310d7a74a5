"""The public data of each aggregate, as carried in events (event-carried state transfer).

Services keep these shapes in their own documents and publish them whole in `data`; consumers
read them without calling back. Field meanings are a contract: add fields, never repurpose them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import Field

# Re-exported: the shapes every contract shares, imported from here as before they had their own module.
from shared.contract_base import EARLIEST_ORDER as EARLIEST_ORDER
from shared.contract_base import LATEST_ORDER as LATEST_ORDER
from shared.contract_base import Actor as Actor
from shared.contract_base import Contract as Contract
from shared.contract_base import CountryCode as CountryCode
from shared.contract_base import EmailStr as EmailStr
from shared.contract_base import Id as Id
from shared.contract_base import Party as Party
from shared.contract_base import Quantity as Quantity
from shared.money import Currency, Money

# Re-exported: the order snapshot (shared/order_models.py).
from shared.order_models import STORED as STORED
from shared.order_models import Address as Address
from shared.order_models import Order as Order
from shared.order_models import OrderLine as OrderLine
from shared.order_models import Payment as Payment
from shared.order_models import Problem as Problem
from shared.order_models import Seller as Seller
from shared.order_models import order_problems as order_problems
from shared.resolution_models import Disposition as Disposition
from shared.resolution_models import Offer as Offer
from shared.resolution_models import OfferStatus as OfferStatus
from shared.resolution_models import RefundDestination as RefundDestination
from shared.resolution_models import Replacement as Replacement
from shared.resolution_models import ReplacementStatus as ReplacementStatus
from shared.resolution_models import ReplacementTiming as ReplacementTiming
from shared.resolution_models import Resolution as Resolution
from shared.resolution_models import Settlement as Settlement
from shared.resolution_models import Variant as Variant

# ---- returns --------------------------------------------------------------------------------


class ReturnStatus(StrEnum):
    REQUESTED = "requested"
    AUTHORIZED = "authorized"
    SHIPPED = "shipped"
    RECEIVED = "received"
    REFUNDED = "refunded"
    REJECTED = "rejected"
    CLOSED = "closed"
    EXPIRED = "expired"
    # Every line replaced, the item back and the replacement shipped: settled with nothing to refund.
    REPLACED = "replaced"


class Fault(StrEnum):
    BUYER = "buyer"
    SELLER = "seller"


class ReasonCode(StrEnum):
    NO_LONGER_NEEDED = "NO_LONGER_NEEDED"
    ORDERED_BY_MISTAKE = "ORDERED_BY_MISTAKE"
    BETTER_PRICE_FOUND = "BETTER_PRICE_FOUND"
    DONT_KNOW_HOW_TO_USE = "DONT_KNOW_HOW_TO_USE"
    DAMAGED_ON_ARRIVAL = "DAMAGED_ON_ARRIVAL"
    DEFECTIVE = "DEFECTIVE"
    WRONG_ITEM_SENT = "WRONG_ITEM_SENT"
    WRONG_SIZE_OR_COLOR_SENT = "WRONG_SIZE_OR_COLOR_SENT"
    MISSING_PARTS = "MISSING_PARTS"
    NOT_AS_DESCRIBED = "NOT_AS_DESCRIBED"
    ARRIVED_LATE = "ARRIVED_LATE"


class ItemCondition(StrEnum):
    SELLABLE = "sellable"
    OPENED = "opened"
    USED = "used"
    DAMAGED_BY_BUYER = "damaged_by_buyer"
    DAMAGED_IN_TRANSIT = "damaged_in_transit"
    WRONG_ITEM = "wrong_item"
    MISSING = "missing"


class LabelType(StrEnum):
    PREPAID = "prepaid"
    UNPAID = "unpaid"


class TimelineEntry(Contract):
    status: ReturnStatus
    action: str
    actor: Actor
    at: datetime
    note: str | None = None


class ReturnLine(Contract):
    line_id: Id
    sku: str
    title: str
    category: str
    unit_price: Money
    quantity: int = Field(gt=0)
    reason_code: ReasonCode
    fault: Fault
    comment: str | None = None
    return_shipping_insurance: bool = Field(
        default=False, description="The order line was bought with return-shipping insurance (see OrderLine)."
    )
    replacement_sku: str | None = Field(
        default=None, description="Resolution `replacement`: the SKU to send (this line's, or a variant's)."
    )


class PolicySnapshot(Contract):
    """The seller policy in force when the return was requested (later changes don't apply)."""

    refund_mode: str = Field(description="`auto` or `manual`")
    restocking_fee_percent: Decimal = Decimal(0)
    seller_pays_return_shipping: bool = False
    returnless_threshold: Money | None = None
    auto_authorize: bool = False
    offers_replacements: bool = False
    replacement_ships: ReplacementTiming = Field(
        default=ReplacementTiming.AT_RECEIPT,
        description="`at_authorization` applies to seller-fault reasons only; others ship at receipt.",
    )


class Authorization(Contract):
    label_type: LabelType | None = Field(default=None, description="None for a returnless refund")
    carrier: str | None = None
    tracking_number: str | None = None
    label_url: str | None = None
    return_shipping_paid_by: Fault
    return_postage: Money | None = Field(
        default=None,
        description="Postage the buyer pays on an unpaid label; refunded as a concession when the seller owes it.",
    )
    insured_return_postage: Money | None = Field(
        default=None,
        description=(
            "The buyer's return postage that return-shipping insurance refunds (the buyer pays shipping and a "
            "returned line was insured): paid by the insurer, never by the seller, and not part of the refund total."
        ),
    )
    returnless: bool = False
    automatic: bool = Field(
        default=False, description="Authorized by policy or by the platform, not by the seller's hand."
    )
    late: bool = Field(default=False, description="Authorized by the platform at the response deadline.")
    instructions: str | None = None
    ship_by: datetime | None = None


class Rejection(Contract):
    reason_code: str
    note: str | None = None
    invalid: bool = Field(description="In-policy request rejected although the seller is at fault.")


class Closure(Contract):
    code: str
    note: str | None = None


class Shipment(Contract):
    carrier: str
    tracking_number: str


class ReceivedLine(Contract):
    line_id: Id
    quantity: int = Field(ge=0)
    condition: ItemCondition
    restocking_fee_percent: Decimal = Field(
        default=Decimal(0),
        ge=0,
        le=100,
        description=(
            "Percent of the unit price the seller keeps on each of these units, decided by the returns service "
            "at receipt: the policy's restocking fee when the buyer is at fault and the item came back opened, "
            "used or damaged by the buyer, otherwise 0. The refund applies it as it is."
        ),
    )
    disposition: Disposition | None = Field(
        default=None,
        description="What the warehouse does with these units (defaulted from the condition, or the seller's); "
        "none for a line that did not arrive.",
    )

    def came_back_for(self, fault: Fault) -> bool:
        """These units count as back (refunded, or replaced): not missing, and not a wrong item sent
        back by a buyer at fault (not the seller's item; when the seller is at fault the "wrong item"
        is the one they shipped)."""
        if self.condition == ItemCondition.MISSING:
            return False
        return not (self.condition == ItemCondition.WRONG_ITEM and fault == Fault.BUYER)


class Receipt(Contract):
    lines: list[ReceivedLine]


class RefundSummary(Contract):
    refund_id: str
    amount: Money
    automatic: bool = False


class Feedback(Contract):
    resolved: bool
    at: datetime


class Return(Contract):
    """The return (RMA) aggregate: data of every `return.*` event and `seller.response_due_soon`."""

    return_id: Id
    order_id: Id
    marketplace: str
    currency: Currency
    status: ReturnStatus
    version: int
    buyer: Party
    seller: Seller
    lines: list[ReturnLine]
    fault: Fault = Field(description="seller when any line's reason is the seller's fault")
    in_policy: bool
    withdrawal: bool = Field(
        default=False,
        description=(
            "Asked under the marketplace's statutory right of withdrawal (GB, DE: within 14 days of delivery, with "
            "a buyer-fault line): no restocking fee applies to any line."
        ),
    )
    policy: PolicySnapshot
    whole_order: bool = Field(
        description="When requested: this return, with the order's live returns before it, asks back every "
        "unit delivered. Informational: whether a refund carries the outbound shipping is decided when "
        "refunding, from what the order's returns brought back."
    )
    created_at: datetime
    updated_at: datetime
    response_due_at: datetime
    authorized_at: datetime | None = None
    ship_by: datetime | None = None
    shipped_at: datetime | None = None
    received_at: datetime | None = None
    refund_due_at: datetime | None = None
    refunded_at: datetime | None = None
    rejected_at: datetime | None = None
    closed_at: datetime | None = None
    expired_at: datetime | None = None
    replaced_at: datetime | None = None
    responded_at: datetime | None = None
    authorization: Authorization | None = None
    rejection: Rejection | None = None
    closure: Closure | None = None
    shipment: Shipment | None = None
    receipt: Receipt | None = None
    refund: RefundSummary | None = None
    refund_failures: list[str] = Field(default_factory=list)
    feedback: Feedback | None = None
    resolution: Resolution = Field(
        default=Resolution.REFUND, description="What the buyer asked for: the money back, or a replacement."
    )
    refund_to: RefundDestination = Field(
        default=RefundDestination.ORIGINAL_PAYMENT, description="Where the refund goes: the payment, or store credit."
    )
    replacement: Replacement | None = Field(default=None, description="Resolution `replacement`: how far it got.")
    offers: list[Offer] = Field(default_factory=list, description="Keep-it offers, oldest first; at most one open.")
    settlement: Settlement | None = Field(
        default=None, description="Set when the buyer accepted an offer to keep the item (`kept_item`)."
    )
    timeline: list[TimelineEntry] = Field(default_factory=list)

    def replacing(self) -> bool:
        """Its lines are to be replaced, not refunded (a replacement the seller could not send falls back)."""
        return (
            self.resolution == Resolution.REPLACEMENT
            and self.replacement is not None
            and self.replacement.status != ReplacementStatus.UNAVAILABLE
        )

    def replacement_status(self) -> ReplacementStatus | None:
        """Where the replacement of its lines stands; None when none is asked for or it was given up."""
        return self.replacement.status if self.replacing() and self.replacement is not None else None

    def open_offer(self) -> Offer | None:
        return next((offer for offer in self.offers if offer.status == OfferStatus.OPEN), None)


# ---- refunds --------------------------------------------------------------------------------


class RefundStatus(StrEnum):
    DUE = "due"  # manual mode: waiting for the seller until the refund deadline
    PENDING = "pending"  # being paid through the gateway
    ISSUED = "issued"
    FAILED = "failed"


class RefundKind(StrEnum):
    RETURN = "return"
    RETURNLESS = "returnless"
    DIRECT = "direct"
    CLAIM = "claim"  # pays an A-to-z claim (granted, or refunded by the seller in answer to it)
    OFFER = "offer"  # pays an accepted keep-it offer: the buyer keeps the item


# `refund.failed` with this `failure_reason`: a claim's refund found nothing left to refund on its order.
ALREADY_REFUNDED = "already_refunded"


class RefundLine(Contract):
    line_id: str
    quantity: int
    unit_price: Money
    subtotal: Money
    restocking_fee: Money


class Breakdown(Contract):
    lines: list[RefundLine] = Field(default_factory=list)
    items: Money
    restocking_fee: Money
    outbound_shipping: Money
    return_shipping_concession: Money
    other_concession: Money
    total: Money
    insured_return_shipping: Money | None = Field(
        default=None,
        description=(
            "Return postage refunded to the buyer by the return-shipping insurer (the return's "
            "`authorization.insured_return_postage`): shown apart, not part of `total`, not charged to the seller."
        ),
    )


class Refund(Contract):
    """A refund: data of `refund.issued`, `refund.failed` and `return.refunded`."""

    refund_id: Id
    kind: RefundKind
    return_id: str | None = None
    return_version: int | None = Field(
        default=None, description="Version of the return this refund answers (received, or authorized returnless)."
    )
    claim_id: str | None = Field(default=None, description="Kind `claim`: the A-to-z claim this refund pays.")
    offer_id: str | None = Field(default=None, description="Kind `offer`: the accepted keep-it offer it pays.")
    destination: RefundDestination = Field(
        default=RefundDestination.ORIGINAL_PAYMENT,
        description="`store_credit`: credited to the buyer's balance (gateway `store_credit`), no card refund.",
    )
    store_credit_bonus: Money | None = Field(
        default=None, description="Store credit only: the marketplace's bonus credited on top of `amount`."
    )
    order_id: Id
    marketplace: str
    currency: Currency
    buyer: Party
    seller: Seller
    status: RefundStatus
    version: int
    amount: Money
    breakdown: Breakdown
    automatic: bool = Field(default=False, description="Issued by the platform on the seller's behalf.")
    actor: Actor
    received_at: datetime | None = None
    due_at: datetime | None = None
    issued_at: datetime | None = None
    gateway: str | None = None
    gateway_reference: str | None = None
    attempts: int = 0
    failure_reason: str | None = None
    created_at: datetime
    updated_at: datetime


# ---- buyers and notifications ---------------------------------------------------------------


class BuyerFlag(Contract):
    """Data of `buyer.flagged` / `buyer.unflagged`."""

    buyer_id: Id
    flagged: bool
    returns_90d: int
    orders_90d: int
    return_rate_90d: float
    reason: str
    at: datetime


class Notification(Contract):
    """Data of `notification.sent` / `notification.failed` (no address or name: ids only)."""

    notification_id: str
    event_id: str
    event_type: str
    template: str
    recipient_role: str
    recipient_id: str
    return_id: str | None = None
    status: str
    attempts: int
    smtp_message_id: str | None = None
    error: str | None = None
    at: datetime


def same_named(source: object, names: Iterable[str]) -> dict[str, Any]:
    """`source`'s attributes `names`, as keywords for a record that calls those fields the same:
    `ReturnLine(**same_named(order_line, ("line_id", "sku")), quantity=1, ...)`."""
    return {name: getattr(source, name) for name in names}
