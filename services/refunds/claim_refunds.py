"""Paying A-to-z claims: the one refund of kind `claim` that pays a claim granted or refunded by its seller.

The disputes service decides that a claim is paid and what is asked (`claim.payment`); this opens
the refund, idempotently by its id, and pays it through the order's gateway like any other
(services/refunds/capped_refunds.py).
"""

from __future__ import annotations

from datetime import datetime

from services.refunds import claim_policy, domain
from services.refunds.capped_refunds import open_capped
from services.refunds.refunding import Refunds
from shared.bus import PermanentError
from shared.dispute_models import Claim
from shared.models import Order, Refund


async def open_for_claim(refunds: Refunds, claim: Claim) -> Refund | None:
    """A claim being paid (`paying`, with its payment): open its one refund and pay it now.

    The refund's id is the claim's `payment.refund_id`. What it pays is the asked amount capped by
    what is left of the order (`claim_policy`), checked again when the payer reserves it on the ledger.
    """
    payment = claim.payment
    if payment is None:
        return None

    def opener(order: Order, available: int, now: datetime) -> Refund:
        problem = claim_policy.problem(claim, order)
        if problem is not None:
            raise PermanentError(f"claim {claim.claim_id}: {problem}")
        amount = claim_policy.amount_to_pay(payment.amount.amount, available)
        return domain.for_claim(claim, order, amount, now=now)

    def pays(refund: Refund) -> bool:
        return refund.claim_id == claim.claim_id

    return await open_capped(refunds, payment.refund_id, claim.order_id, pays=pays, opener=opener)
