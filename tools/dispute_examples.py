"""Realistic example data of the disputes service's events (claims, chargebacks, feedback) and of
`order.expired`, one per event type: used by tools/contract_examples.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from shared.dispute_models import (
    Chargeback,
    ChargebackCategory,
    ChargebackStatus,
    Claim,
    ClaimClosure,
    ClaimDecision,
    ClaimPayment,
    ClaimReason,
    ClaimStatus,
    Evidence,
    ExpiredOrder,
    SellerFeedback,
    SellerResponse,
    Step,
)
from shared.models import Actor, Party
from shared.money import Money

CLAIM_ID = "clm_8e2f4a6b1c3d4e5f9a0b1c2d3e4f5a6b"
CHARGEBACK_ID = "cbk_4c1d2e3f4a5b4c6d8e7f9a0b1c2d3e4f"
FEEDBACK_ID = "fbk_2a3b4c5d6e7f4a8b9c0d1e2f3a4b5c6d"

_BUYER = Party(id="b-42", name="Ada Buyer", email="ada@example.com", locale="en")
_SELLER = Party(id="s-7", name="Gadget Shop", email="support@gadget.example", locale="en")


def _usd(amount: int) -> Money:
    return Money(amount=amount, currency="USD")


def example_claim(event_type: str, now: datetime) -> Claim:
    filed = now - timedelta(hours=80)
    buyer, seller, platform = (
        Actor(role="buyer", id="b-42"),
        Actor(role="seller", id="s-7"),
        Actor(role="platform", id="disputes"),
    )
    timeline = [Step(status="open", action="file", actor=buyer, at=filed, note="Refund never arrived")]
    update: dict[str, object] = {}
    if event_type == "claim.response_due_soon":
        update = {"reminded": True}
    elif event_type == "claim.seller_responded":
        response = SellerResponse(
            kind="contest",
            evidence=Evidence(carrier="UPS", tracking_number="1Z999AA10123456784", text="Refunded on delivery scan."),
            at=now,
        )
        update = {"status": ClaimStatus.CONTESTED, "seller_response": response}
        timeline.append(Step(status="contested", action="contest", actor=seller, at=now))
    elif event_type in ("claim.granted", "claim.closed"):
        decision = ClaimDecision(outcome="granted", amount=_usd(6498), automatic=True, actor=platform, at=now)
        payment = ClaimPayment(refund_id=f"rf_{CLAIM_ID}", amount=_usd(6498))
        update = {"status": ClaimStatus.PAYING, "decision": decision, "payment": payment}
        timeline.append(
            Step(status="paying", action="grant", actor=platform, at=now, note="Seller did not respond in time")
        )
        if event_type == "claim.closed":
            paid = payment.model_copy(update={"paid": _usd(6498), "issued_at": now})
            update |= {"status": ClaimStatus.CLOSED, "payment": paid, "closure": ClaimClosure(code="paid", at=now)}
            timeline.append(Step(status="closed", action="close", actor=platform, at=now))
    elif event_type == "claim.denied":
        agent = Actor(role="agent", id="agent-3")
        decision = ClaimDecision(outcome="denied", actor=agent, note="Tracking shows delivery to the buyer", at=now)
        update = {"status": ClaimStatus.DENIED, "decision": decision}
        timeline.append(Step(status="denied", action="deny", actor=agent, at=now, note=decision.note))
    elif event_type == "claim.withdrawn":
        update = {"status": ClaimStatus.WITHDRAWN}
        timeline.append(Step(status="withdrawn", action="withdraw", actor=buyer, at=now))
    claim = Claim(
        claim_id=CLAIM_ID,
        order_id="ord-1001",
        marketplace="US",
        currency="USD",
        buyer=_BUYER,
        seller=_SELLER,
        reason=ClaimReason.RETURN_NOT_REFUNDED,
        return_id="ret_5f1c0a4e9b8d4e6f8a7b6c5d4e3f2a1b",
        amount=_usd(6498),
        note="Refund never arrived",
        status=ClaimStatus.OPEN,
        version=1,
        filed_at=filed,
        respond_by=filed + timedelta(hours=72),
        timeline=timeline,
        created_at=filed,
        updated_at=now,
    )
    return claim.model_copy(update={**update, "version": len(timeline)})


def example_chargeback(event_type: str, now: datetime) -> Chargeback:
    opened = now - timedelta(days=2)
    platform = Actor(role="platform", id="disputes")
    timeline = [Step(status="needs_response", action="open", actor=Actor(role="service", id="stripe"), at=opened)]
    update: dict[str, object] = {}
    evidence = Evidence(carrier="USPS", tracking_number="9400100000000000000000", text="Delivered to the door.")
    if event_type != "chargeback.opened":
        update = {"status": ChargebackStatus.UNDER_REVIEW, "evidence": evidence, "submitted_at": now}
        timeline.append(
            Step(status="under_review", action="submit_evidence", actor=Actor(role="seller", id="s-7"), at=now)
        )
    if event_type in ("chargeback.won", "chargeback.lost"):
        status = ChargebackStatus.WON if event_type == "chargeback.won" else ChargebackStatus.LOST
        update |= {"status": status, "closed_at": now}
        timeline.append(Step(status=status.value, action="close", actor=platform, at=now))
    chargeback = Chargeback(
        chargeback_id=CHARGEBACK_ID,
        gateway="stripe",
        gateway_dispute_id="dp_1MtwBwLkdIwHu7ix0qXyZ7bC",
        payment_reference="pi_3MtwBwLkdIwHu7ix28a3tqPa",
        order_id="ord-1001",
        marketplace="US",
        buyer_id="b-42",
        seller=_SELLER,
        amount=_usd(6498),
        reason="product_not_received",
        category=ChargebackCategory.SERVICE,
        status=ChargebackStatus.NEEDS_RESPONSE,
        version=1,
        evidence_due_by=opened + timedelta(days=7),
        gateway_due_by=opened + timedelta(days=14),
        timeline=timeline,
        created_at=opened,
        updated_at=now,
    )
    return chargeback.model_copy(update={**update, "version": len(timeline)})


def example_feedback(event_type: str, now: datetime) -> SellerFeedback:
    removed = event_type == "feedback.removed"
    return SellerFeedback(
        feedback_id=FEEDBACK_ID,
        order_id="ord-1001",
        marketplace="US",
        buyer_id="b-42",
        seller_id="s-7",
        rating=1,
        negative=True,
        comment="Never refunded.",
        removed=removed,
        removal_note="Comment is about the carrier, not the seller." if removed else None,
        version=2 if removed else 1,
        left_at=now - timedelta(days=1),
        removed_at=now if removed else None,
    )


def example_expired_order(now: datetime) -> ExpiredOrder:
    return ExpiredOrder(
        order_id="ord-1002",
        marketplace="US",
        seller_id="s-7",
        buyer_id="b-42",
        ordered_at=now - timedelta(days=10),
        expired_at=now,
    )


def example(model: type[BaseModel], event_type: str, now: datetime) -> tuple[BaseModel, str] | None:
    """(data, subject) for the disputes' models and `order.expired`; None for other models."""
    if issubclass(model, Claim):
        return example_claim(event_type, now), CLAIM_ID
    if issubclass(model, Chargeback):
        return example_chargeback(event_type, now), CHARGEBACK_ID
    if issubclass(model, SellerFeedback):
        return example_feedback(event_type, now), FEEDBACK_ID
    if issubclass(model, ExpiredOrder):
        data = example_expired_order(now)
        return data, data.order_id
    return None
