"""Where a refund goes (the original payment, or the buyer's store credit) and the bonus on credit. Pure.

A return's own refund (kinds return and returnless) and an accepted offer's (kind offer) go where the
buyer asked when opening the return (`Return.refund_to`); direct and claim refunds always go back
to the original payment. Store credit is paid through the gateway named `store_credit` (the
store-credit ledger) whatever paid the order, and earns the bonus of the order's marketplace on top
(`resolutions.store_credit_bonus_percent`, or STORE_CREDIT_BONUS_PERCENT when set): the
marketplace's money, so an order's cap counts `amount` only.
"""

from __future__ import annotations

from decimal import Decimal

from shared.models import Refund, RefundDestination, RefundKind, Return
from shared.money import Money

STORE_CREDIT_GATEWAY = "store_credit"
# The kinds that pay for a return and so go where its buyer asked.
RETURN_KINDS = frozenset({RefundKind.RETURN, RefundKind.RETURNLESS, RefundKind.OFFER})


def of_return(kind: RefundKind, ret: Return) -> RefundDestination:
    """Where a refund of this kind for this return goes."""
    return ret.refund_to if kind in RETURN_KINDS else RefundDestination.ORIGINAL_PAYMENT


def bonus(amount: Money, destination: RefundDestination, percent: Decimal) -> Money | None:
    """The marketplace's bonus on a refund to store credit: `percent` % of it, rounded half-up to the
    currency's minor unit (shared/money); None for a refund to the original payment."""
    if destination != RefundDestination.STORE_CREDIT:
        return None
    return amount.percent(percent)


def credited(refund: Refund, percent: Decimal) -> Refund:
    """The refund with its bonus worked out from its amount: when it opens, and whenever the amount
    changes before it is paid (capped to what is left, replaced by the seller's)."""
    return refund.model_copy(update={"store_credit_bonus": bonus(refund.amount, refund.destination, percent)})


def gateway_name(refund: Refund, provider: str) -> str:
    """The gateway that pays the refund: the store-credit ledger for credit, else the order's provider."""
    return STORE_CREDIT_GATEWAY if refund.destination == RefundDestination.STORE_CREDIT else provider
