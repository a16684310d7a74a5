"""Return postage the buyer paid on an unpaid label: part of what they paid on the order.

Both the refunds service (its per-order cap) and the disputes service (what a claim may still ask
for) count it, from the return's authorization as the returns service set it.
"""

from __future__ import annotations

from shared.models import LabelType, Return
from shared.money import Money


def postage_paid_by_buyer(ret: Return) -> Money | None:
    """Postage the buyer paid to send the item back (an unpaid label), whoever owes it in the end,
    unless return-shipping insurance refunds it.

    It is money the buyer paid on this order, so it raises the order's refund cap: a concession
    reimbursing it must fit even when every item and the outbound shipping are refunded too. Insured
    postage is the insurer's to refund (`insured_return_shipping`), so it leaves the cap as it is:
    the seller cannot reimburse it a second time.
    """
    auth = ret.authorization
    if auth is None or auth.returnless or auth.label_type != LabelType.UNPAID or auth.return_postage is None:
        return None
    if insured_return_shipping(ret) is not None:
        return None
    return auth.return_postage if auth.return_postage.amount > 0 else None


def insured_return_shipping(ret: Return) -> Money | None:
    """The return postage the return-shipping insurer refunds the buyer (set by the returns service at
    authorization): shown on the refund's breakdown, never in its total, never paid by the seller."""
    auth = ret.authorization
    if auth is None or auth.returnless or auth.insured_return_postage is None:
        return None
    insured = auth.insured_return_postage
    return insured if insured.amount > 0 and insured.currency == ret.currency else None
