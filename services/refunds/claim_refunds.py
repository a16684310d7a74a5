"""Paying A-to-z claims: the one refund of kind `claim` that pays a claim granted or refunded by its seller.

The disputes service decides that a claim is paid and what is asked (`claim.payment`); this opens
the refund, idempotently by its id, and pays it through the order's gateway like any other
(services/refunds/paying.py: leased, under a key stored before the call, resumable after a crash).
"""

from __future__ import annotations

import logging

from services.refunds import claim_policy, domain
from services.refunds.refunding import OrderNotKnownYet, Refunds
from services.refunds.store import RefundRecord
from shared.bus import PermanentError
from shared.dispute_models import Claim
from shared.models import Refund

log = logging.getLogger(__name__)


async def open_for_claim(refunds: Refunds, claim: Claim) -> Refund | None:
    """A claim being paid (`paying`, with its payment): open its one refund and pay it now.

    Idempotent on its own like `Refunds.open_for_return`: the refund's id is the claim's
    `payment.refund_id`, so a duplicate finds the refund there and at most helps pay it. What
    it pays is the asked amount capped by what is left of the order (`claim_policy`), checked
    again when the payer reserves it on the ledger.
    """
    if claim.payment is None:
        return None
    refund_id = claim.payment.refund_id
    existing = await refunds.store.get(refund_id)
    if existing is not None:
        if existing.refund.claim_id != claim.claim_id:
            raise PermanentError(f"refund {refund_id} exists and does not pay claim {claim.claim_id}")
        return await refunds.payer.pay(refund_id)  # a no-op unless pending and unclaimed
    order = await refunds.store.order(claim.order_id)
    ledger = await refunds.store.ledgers.get(claim.order_id)
    if order is None or ledger is None:  # the ledger follows the order's copy: a crash between them
        raise OrderNotKnownYet(claim.order_id)
    problem = claim_policy.problem(claim, order)
    if problem is not None:
        raise PermanentError(f"claim {claim.claim_id}: {problem}")
    now = refunds.clock.now()
    amount = claim_policy.amount_to_pay(claim.payment.amount.amount, ledger["available"])
    refund = domain.for_claim(claim, order, amount, now=now)
    record = RefundRecord(refund, order.payment, domain.gateway_key(refund_id, 0), 0, None)
    until = refunds.payer.lease_end()  # inserted claimed, paid at once (`Refunds.open_for_return`)
    with refunds.payer.watched(refund_id, until):
        created = await refunds.store.insert(
            refund, payment=order.payment, idempotency_key=record.idempotency_key, now=now, leased_until=until
        )
    log.info(
        "claim refund opened" if created else "claim refund exists",
        extra={"refund_id": refund_id, "claim_id": claim.claim_id, "amount": amount},
    )
    if not created:  # another copy of the event opened it a moment ago
        return await refunds.payer.pay(refund_id)
    return await refunds.payer.pay_created(record, until)
