"""Paying an A-to-z claim: how much, as what breakdown, on whose behalf. Pure functions of the claim.

The disputes service decides that a claim is paid and how much is asked (`claim.payment`); the
refunds service pays it as one refund of kind `claim` (docs/product.md §6). What it pays is
capped by what is left of the order, since a claim is often about money the seller refunded, or
refunds, meanwhile.
"""

from __future__ import annotations

from shared.dispute_models import Claim, ClaimStatus
from shared.models import Actor, Breakdown, Order
from shared.money import Money


def wants_paying(claim: Claim) -> bool:
    """The claim is to be paid now: granted, or refunded by the seller in answer to it.

    `claim.seller_responded` also announces a contest, which pays nothing.
    """
    return claim.status == ClaimStatus.PAYING and claim.payment is not None


def problem(claim: Claim, order: Order) -> str | None:
    """Why the claim's payment can never be made as asked, whatever is retried; None when it can."""
    if claim.payment is None:
        return "the claim has no payment"
    if claim.order_id != order.order_id:
        return f"the claim is about order {claim.order_id}, not {order.order_id}"
    asked = claim.payment.amount
    if asked.currency != order.currency:
        return f"the payment is in {asked.currency}, the order in {order.currency}"
    if asked.amount <= 0:
        return "the payment is not a positive amount"
    return None


def amount_to_pay(asked: int, available: int) -> int:
    """What the claim's refund tries to pay: what was asked, capped by what is left of the order.
    (An accepted offer's refund is paid the same way: services/refunds/offer_refunds.py.)

    With nothing left it still tries the asked amount: the payer then finds no room on the order's
    ledger and records the refund failed as already refunded (the one path for that, shared with a
    refund that loses the rest of the order to a concurrent one).
    """
    return min(asked, available) if available > 0 else asked


def breakdown(amount: Money) -> Breakdown:
    """A claim's refund (and an accepted offer's) is a sum the buyer is owed, not tied to lines or
    shipping: all of it is `other_concession` (the Breakdown's part for money given beyond items and
    postage)."""
    zero = Money.zero(amount.currency)
    return Breakdown(
        lines=[],
        items=zero,
        restocking_fee=zero,
        outbound_shipping=zero,
        return_shipping_concession=zero,
        other_concession=amount,
        total=amount,
    )


def actor(claim: Claim, default: Actor) -> Actor:
    """Who had the claim paid: the decision's actor when it was granted (an agent, or the platform
    at the seller's deadline), else whoever answered it with a refund (the last step to `paying`:
    the seller or an agent on their behalf)."""
    if claim.decision is not None:
        return claim.decision.actor
    paying = [step for step in claim.timeline if step.status == ClaimStatus.PAYING.value]
    return paying[-1].actor if paying else default


def automatic(claim: Claim) -> bool:
    """Paid on the seller's behalf: granted by the platform because the seller did not answer."""
    return claim.decision is not None and claim.decision.automatic
