"""Facts of the order defect rate: what metrics keeps of each claim, chargeback, seller feedback
and order expired unshipped (SPEC §11). Pure: no I/O.

Like facts.py: one fact per aggregate, from the latest event's full state, replaced only by a newer
version, so a copy or a late event changes nothing, and every figure is computed at query time.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from services.metrics.facts import as_dict
from shared.dispute_models import Chargeback, ChargebackCategory, Claim, ClaimStatus, ExpiredOrder, SellerFeedback


@dataclass(frozen=True)
class ClaimFact:
    claim_id: str
    version: int
    order_id: str
    seller_id: str
    buyer_id: str
    marketplace: str
    reason: str
    status: str
    filed_at: datetime
    seller_refunded_at: datetime | None = None  # the seller answered with a refund
    granted_at: datetime | None = None
    denied_at: datetime | None = None
    withdrawn_at: datetime | None = None
    closed_at: datetime | None = None
    automatic: bool = False  # granted by the platform at the seller's deadline

    @property
    def denied_or_withdrawn(self) -> bool:
        return self.status in (ClaimStatus.DENIED, ClaimStatus.WITHDRAWN)


@dataclass(frozen=True)
class ChargebackFact:
    chargeback_id: str
    version: int
    order_id: str | None  # None: no order carries the disputed payment
    seller_id: str | None
    category: str
    status: str
    opened_at: datetime
    closed_at: datetime | None = None

    @property
    def service(self) -> bool:
        """Fraud chargebacks are the card holder's, not the seller's: only service ones are defects."""
        return self.category == ChargebackCategory.SERVICE


@dataclass(frozen=True)
class FeedbackFact:
    feedback_id: str
    version: int
    order_id: str
    seller_id: str
    rating: int
    negative: bool
    removed: bool
    left_at: datetime
    removed_at: datetime | None = None

    @property
    def counts(self) -> bool:
        """Negative feedback (1-2 stars) counts until an agent removes it."""
        return self.negative and not self.removed


@dataclass(frozen=True)
class ExpiredFact:
    order_id: str
    sequence: int
    seller_id: str
    buyer_id: str
    marketplace: str
    ordered_at: datetime
    expired_at: datetime


DisputeFact = ClaimFact | ChargebackFact | FeedbackFact | ExpiredFact


def claim_fact(claim: Claim) -> ClaimFact:
    decision = claim.decision
    response = claim.seller_response
    withdrawn = [step.at for step in claim.timeline if step.status == ClaimStatus.WITHDRAWN]
    if claim.status == ClaimStatus.WITHDRAWN and not withdrawn:
        withdrawn = [claim.updated_at]
    return ClaimFact(
        claim_id=claim.claim_id,
        version=claim.version,
        order_id=claim.order_id,
        seller_id=claim.seller.id,
        buyer_id=claim.buyer.id,
        marketplace=claim.marketplace,
        reason=str(claim.reason),
        status=str(claim.status),
        filed_at=claim.filed_at,
        seller_refunded_at=response.at if response and response.kind == "refund" else None,
        granted_at=decision.at if decision and decision.outcome == "granted" else None,
        denied_at=decision.at if decision and decision.outcome == "denied" else None,
        withdrawn_at=withdrawn[0] if withdrawn else None,
        closed_at=claim.closure.at if claim.closure else None,
        automatic=bool(decision and decision.automatic),
    )


def chargeback_fact(chargeback: Chargeback) -> ChargebackFact:
    return ChargebackFact(
        chargeback_id=chargeback.chargeback_id,
        version=chargeback.version,
        order_id=chargeback.order_id,
        seller_id=chargeback.seller.id if chargeback.seller else None,
        category=str(chargeback.category),
        status=str(chargeback.status),
        opened_at=chargeback.created_at,
        closed_at=chargeback.closed_at,
    )


def feedback_fact(feedback: SellerFeedback) -> FeedbackFact:
    return FeedbackFact(
        feedback_id=feedback.feedback_id,
        version=feedback.version,
        order_id=feedback.order_id,
        seller_id=feedback.seller_id,
        rating=feedback.rating,
        negative=feedback.negative,
        removed=feedback.removed,
        left_at=feedback.left_at,
        removed_at=feedback.removed_at,
    )


def expired_fact(order: ExpiredOrder, sequence: int = 0) -> ExpiredFact:
    return ExpiredFact(
        order_id=order.order_id,
        sequence=sequence,
        seller_id=order.seller_id,
        buyer_id=order.buyer_id,
        marketplace=order.marketplace,
        ordered_at=order.ordered_at,
        expired_at=order.expired_at,
    )


# ---- documents ------------------------------------------------------------------------------
# `_id` is the aggregate's id. `first_at` (when it began) and `last_event_at` (its latest
# transition) are for a period's query: a fact with anything in [start, end) has
# first_at < end and last_event_at >= start.

_KEYS = {ClaimFact: "claim_id", ChargebackFact: "chargeback_id", FeedbackFact: "feedback_id", ExpiredFact: "order_id"}
_FIRST = {ClaimFact: "filed_at", ChargebackFact: "opened_at", FeedbackFact: "left_at", ExpiredFact: "expired_at"}


def to_document(fact: DisputeFact) -> dict[str, Any]:
    doc = as_dict(fact)
    doc["_id"] = doc[_KEYS[type(fact)]]
    doc["first_at"] = doc[_FIRST[type(fact)]]
    doc["last_event_at"] = max(v for v in doc.values() if isinstance(v, datetime))
    return doc


F = TypeVar("F", ClaimFact, ChargebackFact, FeedbackFact, ExpiredFact)


def from_document(kind: type[F], doc: dict[str, Any]) -> F:
    names = {f.name for f in fields(kind)}
    return kind(**{k: v for k, v in doc.items() if k in names})
