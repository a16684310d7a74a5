"""Opening a refund of a sum (a claim's, an accepted offer's): once by its id, capped, paid at once.

Such a refund is not computed from lines but asked for; what it pays is capped by what is left of
the order when it opens (`claim_policy.amount_to_pay`), and shrunk again by the payer if a
concurrent refund takes part of the rest meanwhile (`Payer._reserve_capped`); with nothing left it
fails `already_refunded` without a gateway call. It is paid through the same machinery as any
refund (services/refunds/paying.py: leased, under a key stored before the call, resumable after a
crash), and idempotent on its own like `Refunds.open_for_return`: a duplicate event finds the
refund by its id and at most helps pay it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from services.refunds import domain
from services.refunds.refunding import OrderNotKnownYet, Refunds
from services.refunds.store import RefundRecord
from shared.bus import PermanentError
from shared.models import Order, Refund

log = logging.getLogger(__name__)

# (the order, what is left of it, now) -> the new refund; PermanentError when it can never be paid.
Opener = Callable[[Order, int, datetime], Refund]


async def open_capped(
    refunds: Refunds, refund_id: str, order_id: str, *, pays: Callable[[Refund], bool], opener: Opener
) -> Refund | None:
    """Open the refund `refund_id` of order `order_id` (made by `opener`) and pay it now; when it
    exists already, check that it `pays` the same thing (else the event is parked) and help pay it."""
    existing = await refunds.store.get(refund_id)
    if existing is not None:
        if not pays(existing.refund):
            raise PermanentError(f"refund {refund_id} exists and pays something else")
        return await refunds.payer.pay(refund_id)  # a no-op unless pending and unclaimed
    order = await refunds.store.order(order_id)
    ledger = await refunds.store.ledgers.get(order_id)
    if order is None or ledger is None:  # the ledger follows the order's copy: a crash between them
        raise OrderNotKnownYet(order_id)
    now = refunds.clock.now()
    refund = opener(order, ledger["available"], now)
    record = RefundRecord(refund, order.payment, domain.gateway_key(refund_id, 0), 0, None)
    until = refunds.payer.lease_end()  # inserted claimed, paid at once (`Refunds.open_for_return`)
    with refunds.payer.watched(refund_id, until):
        created = await refunds.store.insert(
            refund, payment=order.payment, idempotency_key=record.idempotency_key, now=now, leased_until=until
        )
    log.info(
        f"{refund.kind.value} refund opened" if created else f"{refund.kind.value} refund exists",
        extra={
            "refund_id": refund_id,
            "claim_id": refund.claim_id,
            "offer_id": refund.offer_id,
            "return_id": refund.return_id,
            "amount": refund.amount.amount,
        },
    )
    if not created:  # another copy of the event opened it a moment ago
        return await refunds.payer.pay(refund_id)
    return await refunds.payer.pay_created(record, until)
