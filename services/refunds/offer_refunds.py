"""Paying an accepted keep-it offer: the one refund of kind `offer` (docs/product.md §12).

The buyer accepted the seller's offer and keeps the item (`return.offer_accepted`, `settlement`);
the offer's amount is refunded once, capped by what is left of the order like a claim's
(services/refunds/capped_refunds.py), to where the buyer asked the return's refund to go. Its
`return.refunded` ends the return `refunded`.
"""

from __future__ import annotations

from datetime import datetime

from services.refunds import claim_policy, domain
from services.refunds.capped_refunds import open_capped
from services.refunds.refunding import Refunds
from shared.bus import PermanentError
from shared.models import Order, Refund, Return


def problem(ret: Return, order: Order) -> str | None:
    """Why the accepted offer can never be paid as settled, whatever is retried; None when it can."""
    settlement = ret.settlement
    if settlement is None or not settlement.kept_item or settlement.offer_id is None:
        return "the return has no accepted offer"
    if ret.order_id != order.order_id:
        return f"the return is of order {ret.order_id}, not {order.order_id}"
    if settlement.amount.currency != order.currency:
        return f"the offer is in {settlement.amount.currency}, the order in {order.currency}"
    if settlement.amount.amount <= 0:
        return "the offer is not a positive amount"
    return None


async def open_for_offer(refunds: Refunds, ret: Return) -> Refund | None:
    """The buyer accepted an offer: open its one refund ("rf_" + offer id) and pay it now."""
    settlement = ret.settlement
    if settlement is None or settlement.offer_id is None:
        raise PermanentError(f"return {ret.return_id}: the return has no accepted offer")
    offer_id, asked = settlement.offer_id, settlement.amount.amount

    def opener(order: Order, available: int, now: datetime) -> Refund:
        why = problem(ret, order)
        if why is not None:
            raise PermanentError(f"return {ret.return_id}: {why}")
        amount = claim_policy.amount_to_pay(asked, available)
        return domain.for_offer(
            ret, order, amount, now=now, bonus_percent=refunds.payer.bonus_percent(order.marketplace)
        )

    def pays(refund: Refund) -> bool:
        return refund.offer_id == offer_id

    return await open_capped(refunds, domain.offer_refund_id(offer_id), ret.order_id, pays=pays, opener=opener)
