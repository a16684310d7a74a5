"""Hand-made claims, chargebacks, seller feedback, expired orders and order refunds for the metrics
tests of the order defect rate (unit and integration), and the events that carry them."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.dispute_models import (
    Chargeback,
    ChargebackCategory,
    ChargebackStatus,
    Claim,
    ClaimDecision,
    ClaimReason,
    ClaimStatus,
    ExpiredOrder,
    SellerFeedback,
    SellerResponse,
    Step,
)
from shared.events import CloudEvent, new_event
from shared.models import Actor, Breakdown, Party, Refund, RefundKind, RefundStatus
from shared.money import Money
from tests.unit.metrics import builders

PLATFORM = Actor(role="platform", id="disputes")
AGENT = Actor(role="agent", id="agent-1")


def _usd(amount: int) -> Money:
    return Money(amount=amount, currency="USD")


def claim(
    claim_id: str, *, order_id: str, seller_id: str, filed_at: datetime, buyer_id: str = "b1", marketplace: str = "US"
) -> Claim:
    buyer = Actor(role="buyer", id=buyer_id)
    return Claim(
        claim_id=claim_id,
        order_id=order_id,
        marketplace=marketplace,
        currency="USD",
        buyer=Party(id=buyer_id, name=f"Buyer {buyer_id}", email=f"{buyer_id}@buyers.example"),
        seller=Party(id=seller_id, name=f"Seller {seller_id}", email=f"{seller_id}@sellers.example"),
        reason=ClaimReason.ITEM_NOT_RECEIVED,
        amount=_usd(1000),
        status=ClaimStatus.OPEN,
        version=1,
        filed_at=filed_at,
        respond_by=filed_at + timedelta(hours=72),
        timeline=[Step(status="open", action="file", actor=buyer, at=filed_at)],
        created_at=filed_at,
        updated_at=filed_at,
    )


def _step(c: Claim, status: ClaimStatus, action: str, actor: Actor, when: datetime, **changes: object) -> Claim:
    timeline = [*c.timeline, Step(status=status.value, action=action, actor=actor, at=when)]
    return c.model_copy(
        update={"status": status, "version": c.version + 1, "timeline": timeline, "updated_at": when, **changes}
    )


def granted(c: Claim, when: datetime, *, automatic: bool = False) -> Claim:
    actor = PLATFORM if automatic else AGENT
    decision = ClaimDecision(outcome="granted", amount=c.amount, automatic=automatic, actor=actor, at=when)
    return _step(c, ClaimStatus.PAYING, "grant", actor, when, decision=decision)


def denied(c: Claim, when: datetime) -> Claim:
    decision = ClaimDecision(outcome="denied", actor=AGENT, note="Tracking shows delivery", at=when)
    return _step(c, ClaimStatus.DENIED, "deny", AGENT, when, decision=decision)


def withdrawn(c: Claim, when: datetime) -> Claim:
    return _step(c, ClaimStatus.WITHDRAWN, "withdraw", Actor(role="buyer", id=c.buyer.id), when)


def refunded_by_seller(c: Claim, when: datetime) -> Claim:
    response = SellerResponse(kind="refund", amount=c.amount, at=when)
    return _step(c, ClaimStatus.PAYING, "refund", Actor(role="seller", id=c.seller.id), when, seller_response=response)


def chargeback(
    chargeback_id: str, *, order_id: str | None, seller_id: str | None, opened_at: datetime, fraud: bool = False
) -> Chargeback:
    return Chargeback(
        chargeback_id=chargeback_id,
        gateway="stripe",
        gateway_dispute_id=f"dp_{chargeback_id}",
        payment_reference=f"pi_{order_id}",
        order_id=order_id,
        marketplace="US",
        buyer_id="b1",
        seller=Party(id=seller_id, name=f"Seller {seller_id}", email=f"{seller_id}@sellers.example")
        if seller_id
        else None,
        amount=_usd(1000),
        reason="fraudulent" if fraud else "product_not_received",
        category=ChargebackCategory.FRAUD if fraud else ChargebackCategory.SERVICE,
        status=ChargebackStatus.NEEDS_RESPONSE,
        version=1,
        evidence_due_by=opened_at + timedelta(days=7),
        created_at=opened_at,
        updated_at=opened_at,
    )


def chargeback_closed(cb: Chargeback, when: datetime, *, won: bool) -> Chargeback:
    status = ChargebackStatus.WON if won else ChargebackStatus.LOST
    return cb.model_copy(update={"status": status, "closed_at": when, "updated_at": when, "version": cb.version + 1})


def seller_feedback(
    feedback_id: str, *, order_id: str, seller_id: str, rating: int, left_at: datetime, buyer_id: str = "b1"
) -> SellerFeedback:
    return SellerFeedback(
        feedback_id=feedback_id,
        order_id=order_id,
        marketplace="US",
        buyer_id=buyer_id,
        seller_id=seller_id,
        rating=rating,
        negative=rating <= 2,
        version=1,
        left_at=left_at,
    )


def removed(fb: SellerFeedback, when: datetime) -> SellerFeedback:
    return fb.model_copy(
        update={"removed": True, "removal_note": "About the carrier", "removed_at": when, "version": fb.version + 1}
    )


def expired_order(order_id: str, *, seller_id: str, expired_at: datetime) -> ExpiredOrder:
    return ExpiredOrder(
        order_id=order_id,
        marketplace="US",
        seller_id=seller_id,
        buyer_id="b1",
        ordered_at=expired_at - timedelta(days=5),
        expired_at=expired_at,
    )


def order_refund(refund_id: str, *, order_id: str, seller_id: str, issued_at: datetime) -> Refund:
    """A refund on an order with no return: a concession (kind `direct`), issued."""
    money = _usd(500)
    zero = Money.zero("USD")
    return Refund(
        refund_id=refund_id,
        kind=RefundKind.DIRECT,
        order_id=order_id,
        marketplace="US",
        currency="USD",
        buyer=Party(id="b1", name="Buyer b1", email="b1@buyers.example"),
        seller=builders.seller(seller_id),
        status=RefundStatus.ISSUED,
        version=2,
        amount=money,
        breakdown=Breakdown(
            items=zero,
            restocking_fee=zero,
            outbound_shipping=zero,
            return_shipping_concession=zero,
            other_concession=money,
            total=money,
        ),
        automatic=False,
        actor=Actor(role="seller", id=seller_id),
        issued_at=issued_at,
        created_at=issued_at,
        updated_at=issued_at,
    )


# ---- events -----------------------------------------------------------------------------------

CLAIM_EVENTS = {
    ClaimStatus.OPEN: "claim.filed",
    ClaimStatus.DENIED: "claim.denied",
    ClaimStatus.WITHDRAWN: "claim.withdrawn",
    ClaimStatus.CLOSED: "claim.closed",
}


def claim_event(c: Claim, event_type: str | None = None) -> CloudEvent:
    if event_type is None:
        event_type = CLAIM_EVENTS.get(c.status) or ("claim.granted" if c.decision else "claim.seller_responded")
    return new_event(event_type, service="disputes", subject=c.claim_id, data=c, sequence=c.version, time=c.updated_at)


def chargeback_event(cb: Chargeback) -> CloudEvent:
    event_type = {ChargebackStatus.WON: "chargeback.won", ChargebackStatus.LOST: "chargeback.lost"}.get(
        cb.status, "chargeback.opened"
    )
    return new_event(
        event_type, service="disputes", subject=cb.chargeback_id, data=cb, sequence=cb.version, time=cb.updated_at
    )


def feedback_event(fb: SellerFeedback) -> CloudEvent:
    event_type = "feedback.removed" if fb.removed else "feedback.left"
    when = fb.removed_at or fb.left_at
    return new_event(event_type, service="disputes", subject=fb.feedback_id, data=fb, sequence=fb.version, time=when)


def expired_event(order: ExpiredOrder) -> CloudEvent:
    return new_event(
        "order.expired", service="orders", subject=order.order_id, data=order, sequence=0, time=order.expired_at
    )
