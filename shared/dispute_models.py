"""The public data of the disputes service's aggregates: A-to-z claims, chargebacks, seller feedback.

Carried whole in `claim.*`, `chargeback.*` and `feedback.*` events (event-carried state), like
shared.models does for returns and refunds. Field meanings are a contract: add, never repurpose.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from shared.models import Actor, Contract, CountryCode, Id, Party
from shared.money import Currency, Money

Note = Annotated[str, StringConstraints(max_length=2000)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Step(Contract):
    """One entry of a claim's or a chargeback's timeline: who did what, when, to which status."""

    status: str
    action: str
    actor: Actor
    at: datetime
    note: str | None = None


# ---- A-to-z guarantee claims ------------------------------------------------------------------


class ClaimReason(StrEnum):
    ITEM_NOT_RECEIVED = "ITEM_NOT_RECEIVED"
    NOT_AS_DESCRIBED = "NOT_AS_DESCRIBED"
    DEFECTIVE = "DEFECTIVE"
    RETURN_NOT_REFUNDED = "RETURN_NOT_REFUNDED"  # a received return whose refund deadline passed unpaid
    RETURN_REFUSED = "RETURN_REFUSED"  # an in-policy request rejected, or unanswered and not yet auto-authorized
    PARTIAL_REFUND_DISPUTED = "PARTIAL_REFUND_DISPUTED"


# Reasons that name a return (`return_id` is required) and may be filed at once after the order.
RETURN_REASONS = frozenset({ClaimReason.RETURN_NOT_REFUNDED, ClaimReason.RETURN_REFUSED})


class ClaimStatus(StrEnum):
    OPEN = "open"  # waiting for the seller until `respond_by`
    CONTESTED = "contested"  # the seller contested with evidence: waiting for an agent
    PAYING = "paying"  # granted, or refunded by the seller: being paid through the refunds service
    DENIED = "denied"  # an agent decided for the seller (final)
    WITHDRAWN = "withdrawn"  # the buyer withdrew (final)
    CLOSED = "closed"  # paid, or nothing was left to pay (`closure.code`; final)


OPEN_STATUSES = frozenset({ClaimStatus.OPEN, ClaimStatus.CONTESTED, ClaimStatus.PAYING})


class Evidence(Contract):
    """What a seller shows against a claim or a chargeback; at least one field is set."""

    carrier: ShortText | None = None
    tracking_number: ShortText | None = None
    refund_reference: ShortText | None = Field(default=None, description="A refund id or a gateway reference.")
    text: Note | None = None


class SellerResponse(Contract):
    kind: Literal["refund", "contest"]
    amount: Money | None = Field(default=None, description="`refund`: what the seller refunds (full or partial).")
    evidence: Evidence | None = Field(default=None, description="`contest`: the seller's evidence.")
    note: Note | None = None
    at: AwareDatetime


class ClaimDecision(Contract):
    outcome: Literal["granted", "denied"]
    amount: Money | None = Field(default=None, description="Granted: what the buyer is paid.")
    automatic: bool = Field(default=False, description="Granted by the platform at the seller's deadline.")
    funded_by: Literal["seller", "marketplace"] = "seller"
    actor: Actor
    note: Note | None = None
    at: AwareDatetime


class ClaimPayment(Contract):
    """The one refund that pays the claim (kind `claim`, id derived from the claim id)."""

    refund_id: Id
    amount: Money = Field(description="What was asked of the refunds service.")
    paid: Money | None = Field(default=None, description="What the refund paid (capped by the order's remainder).")
    issued_at: datetime | None = None


class ClaimClosure(Contract):
    code: Literal["paid", "already_refunded"]
    at: AwareDatetime


class Claim(Contract):
    """An A-to-z guarantee claim: data of every `claim.*` event. Subject: the claim id."""

    claim_id: Id
    order_id: Id
    marketplace: CountryCode
    currency: Currency
    buyer: Party
    seller: Party
    reason: ClaimReason
    return_id: Id | None = Field(default=None, description="The return a RETURN_* claim is about.")
    amount: Money = Field(description="What the buyer asks for: at most what is still refundable on the order.")
    note: Note | None = None
    status: ClaimStatus
    version: int
    filed_at: datetime
    respond_by: datetime = Field(description="The seller's response deadline; unanswered, the claim is granted.")
    reminded: bool = Field(default=False, description="`claim.response_due_soon` was sent for this claim.")
    seller_response: SellerResponse | None = None
    decision: ClaimDecision | None = None
    payment: ClaimPayment | None = None
    closure: ClaimClosure | None = None
    timeline: list[Step] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


# ---- card chargebacks -----------------------------------------------------------------------


class ChargebackCategory(StrEnum):
    FRAUD = "fraud"  # the gateway's reason is `fraudulent`
    SERVICE = "service"  # every other reason: counts toward the order defect rate


class ChargebackStatus(StrEnum):
    NEEDS_RESPONSE = "needs_response"  # waiting for the seller's evidence until `evidence_due_by`
    UNDER_REVIEW = "under_review"  # evidence submitted to the gateway
    WON = "won"
    LOST = "lost"


class Chargeback(Contract):
    """A card dispute the payment gateway reported: data of every `chargeback.*` event.
    Subject: the chargeback id."""

    chargeback_id: Id
    gateway: str = Field(description="`stripe`.")
    gateway_dispute_id: Id
    payment_reference: str = Field(description="The disputed payment (charge or PaymentIntent id).")
    order_id: Id | None = Field(default=None, description="None when no order carries that payment reference.")
    marketplace: CountryCode | None = None
    buyer_id: Id | None = None
    seller: Party | None = None
    amount: Money
    reason: str = Field(description="The gateway's dispute reason (`fraudulent`, `product_not_received`, ...).")
    category: ChargebackCategory
    status: ChargebackStatus
    version: int
    evidence_due_by: datetime = Field(description="When the seller's evidence is due (the platform's deadline).")
    gateway_due_by: datetime | None = Field(default=None, description="The gateway's own evidence deadline.")
    gateway_status: str | None = Field(
        default=None, description="The gateway's own status of the dispute (`needs_response`, `under_review`, ...)."
    )
    evidence: Evidence | None = None
    automatic: bool = Field(default=False, description="The platform answered by itself (the order was refunded).")
    submitted_at: datetime | None = None
    closed_at: datetime | None = None
    timeline: list[Step] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


# ---- seller feedback ------------------------------------------------------------------------

NEGATIVE_RATING = 2  # 1 or 2 stars is negative feedback


class SellerFeedback(Contract):
    """A buyer's 1-5 star feedback on the seller of one order: data of `feedback.left` and
    `feedback.removed`. Subject: the feedback id. Ids only: no buyer name or address."""

    feedback_id: Id
    order_id: Id
    marketplace: CountryCode
    buyer_id: Id
    seller_id: Id
    rating: int = Field(ge=1, le=5)
    negative: bool = Field(description=f"Rating {NEGATIVE_RATING} or less.")
    comment: Note | None = None
    removed: bool = False
    removal_note: Note | None = None
    version: int
    left_at: datetime
    removed_at: datetime | None = None


# ---- orders the seller never shipped ----------------------------------------------------------


class ExpiredOrder(Contract):
    """`order.expired`: the upstream order system cancelled an order its seller never shipped.
    Subject: the order id."""

    order_id: Id
    marketplace: CountryCode
    seller_id: Id
    buyer_id: Id
    ordered_at: AwareDatetime
    expired_at: AwareDatetime
