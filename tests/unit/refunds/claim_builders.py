"""A-to-z claims as the refunds service receives them, built from tools/dispute_examples.py's data
and moved onto a test's order (unit and integration tests)."""

from __future__ import annotations

from datetime import datetime

from shared.dispute_models import Claim, ClaimPayment, ClaimStatus, SellerResponse, Step
from shared.models import Actor, Order, Party
from shared.money import Money
from tests.unit.refunds.builders import unique
from tools.dispute_examples import example_claim


def granted_claim(order: Order, amount: int, now: datetime, *, claim_id: str | None = None) -> Claim:
    """`claim.granted` data: granted by the platform at the seller's deadline, `amount` to pay."""
    claim = _on_order(example_claim("claim.granted", now), order, amount, claim_id)
    assert claim.decision is not None
    decision = claim.decision.model_copy(update={"amount": claim.amount})
    return claim.model_copy(update={"decision": decision})


def refunded_by_seller(order: Order, amount: int, now: datetime, *, claim_id: str | None = None) -> Claim:
    """`claim.seller_responded` data: the seller answered with a refund of `amount` (status paying)."""
    contested = example_claim("claim.seller_responded", now)
    seller = Actor(role="seller", id=order.seller.id)
    response = SellerResponse(kind="refund", amount=Money(amount=amount, currency=order.currency), at=now)
    opened = contested.timeline[:1]
    claim = contested.model_copy(
        update={
            "status": ClaimStatus.PAYING,
            "seller_response": response,
            "timeline": [*opened, Step(status="paying", action="refund", actor=seller, at=now)],
            "version": 2,
        }
    )
    return _on_order(claim, order, amount, claim_id)


def contested_claim(order: Order, amount: int, now: datetime) -> Claim:
    """`claim.seller_responded` data of a contest: nothing to pay."""
    return _on_order(example_claim("claim.seller_responded", now), order, amount, None)


def _on_order(claim: Claim, order: Order, amount: int, claim_id: str | None) -> Claim:
    claim_id = claim_id or unique("clm")
    money = Money(amount=amount, currency=order.currency)
    payment = None
    if claim.status == ClaimStatus.PAYING:
        payment = ClaimPayment(refund_id=f"rf_{claim_id}", amount=money)
    return claim.model_copy(
        update={
            "claim_id": claim_id,
            "order_id": order.order_id,
            "marketplace": order.marketplace,
            "currency": order.currency,
            "buyer": order.buyer,
            "seller": Party.model_validate(order.seller.model_dump(exclude={"return_address"})),
            "amount": money,
            "payment": payment,
        }
    )
