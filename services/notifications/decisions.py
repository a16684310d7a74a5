"""Who hears what: the decision table of docs/product.md §8, as data.

Each rule reads: on `event_type`, when `when(data)` holds, email the `recipient` with `template`.
`data` is the event's typed data (`Return`, `Refund`, `Claim`, `Chargeback` or `StoreCreditEntry`:
subjects.py).
Templates live under `templates/<locale>/<template>.{txt,html}`.

`return.shipped` tells the seller the parcel is on its way (carrier and tracking), so they can
expect it; the buyer already knows. On an order refunded in full, disputes opens the chargeback
(`chargeback.opened`, waiting for evidence) and submits the refund as evidence right after
(`chargeback.evidence_submitted`, `automatic`): the seller hears of that answer from the second
event (an opened chargeback already marked `automatic` says it in its own email too). Keep-it
offers (docs/product.md §12): the buyer hears the offer, its acceptance and its expiry; the seller
(whose offer it is) the buyer's answer or its expiry. Replacements: the seller hears what to send,
the buyer that it shipped or that it cannot be sent (refunded instead). The types the table sends
nothing for are not consumed at all; handlers.IGNORED says why for each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from shared.models import ALREADY_REFUNDED, RefundKind

Recipient = Literal["buyer", "seller"]


@dataclass(frozen=True)
class Rule:
    event_type: str
    recipient: Recipient
    template: str
    when: Callable[[Any], bool] = lambda data: True


def _returnless(data: Any) -> bool:
    return bool(data.authorization and data.authorization.returnless)


def _ships_back(data: Any) -> bool:
    return not _returnless(data)


def _automatic_authorization(data: Any) -> bool:
    """Authorized by the platform: at the 48-hour deadline (late), or at once by the seller's own
    auto-authorization or returnless threshold; the seller answers neither."""
    return bool(data.authorization and data.authorization.automatic)


def _direct(data: Any) -> bool:
    # Refunds of a return reach the buyer through `return.refunded`; only direct ones through here.
    return data.return_id is None


def _automatic(data: Any) -> bool:
    return bool(data.automatic)


def _not_a_claim_found_paid(data: Any) -> bool:
    # A claim's refund that found the order already refunded in full is not a failed payment to
    # the buyer: `claim.closed` (`already_refunded`) tells them why nothing more is paid.
    return not (data.kind == RefundKind.CLAIM and data.failure_reason == ALREADY_REFUNDED)


def _closed_already_refunded(data: Any) -> bool:
    # A claim closed `paid` reached the buyer as the refund's own email (refund.issued or return.refunded).
    return bool(data.closure and data.closure.code == "already_refunded")


def _answered_for_the_seller(data: Any) -> bool:
    # The platform's own answer (the order was refunded in full); the seller's own evidence is their act.
    return _has_seller(data) and bool(data.automatic)


def _offer_open(data: Any) -> bool:
    # The offer event's own offer: without one the email would have nothing to offer.
    return data.open_offer() is not None


def _has_offer(data: Any) -> bool:
    return bool(data.offers)


def _has_replacement(data: Any) -> bool:
    return data.replacement is not None


def _has_buyer(data: Any) -> bool:
    return data.buyer is not None


def _has_seller(data: Any) -> bool:
    # A chargeback whose payment matches no order has no seller to ask (the seller is known through
    # the order): no one is emailed.
    return data.seller is not None and data.order_id is not None


RULES: tuple[Rule, ...] = (
    Rule("return.created", "buyer", "buyer/return_requested"),
    Rule("return.created", "seller", "seller/new_request"),
    Rule("seller.response_due_soon", "seller", "seller/response_due_soon"),
    Rule("return.authorized", "buyer", "buyer/return_authorized", _ships_back),
    Rule("return.authorized", "buyer", "buyer/returnless_refund", _returnless),
    Rule("return.authorized", "seller", "seller/auto_authorized", _automatic_authorization),
    Rule("return.rejected", "buyer", "buyer/return_rejected"),
    Rule("return.closed", "buyer", "buyer/return_closed"),
    Rule("return.expired", "buyer", "buyer/return_expired"),
    Rule("return.shipped", "seller", "seller/return_shipped"),
    Rule("return.received", "buyer", "buyer/item_received"),
    Rule("return.received", "seller", "seller/item_received"),
    Rule("return.refunded", "buyer", "buyer/refunded"),
    Rule("refund.issued", "buyer", "buyer/refunded", _direct),
    Rule("refund.issued", "seller", "seller/auto_refunded", _automatic),
    Rule("refund.failed", "buyer", "buyer/refund_failed", _not_a_claim_found_paid),
    Rule("claim.filed", "buyer", "buyer/claim_received"),
    Rule("claim.filed", "seller", "seller/claim_filed"),
    Rule("claim.response_due_soon", "seller", "seller/claim_response_due_soon"),
    Rule("claim.granted", "buyer", "buyer/claim_granted"),
    Rule("claim.granted", "seller", "seller/claim_granted"),
    Rule("claim.denied", "buyer", "buyer/claim_denied"),
    Rule("claim.denied", "seller", "seller/claim_denied"),
    Rule("claim.closed", "buyer", "buyer/claim_already_refunded", _closed_already_refunded),
    Rule("chargeback.opened", "seller", "seller/chargeback_opened", _has_seller),
    Rule("chargeback.evidence_submitted", "seller", "seller/chargeback_answered", _answered_for_the_seller),
    Rule("chargeback.won", "seller", "seller/chargeback_won", _has_seller),
    Rule("chargeback.lost", "seller", "seller/chargeback_lost", _has_seller),
    Rule("return.offer_made", "buyer", "buyer/offer_made", _offer_open),
    Rule("return.offer_accepted", "buyer", "buyer/offer_accepted", _has_offer),
    Rule("return.offer_accepted", "seller", "seller/offer_accepted", _has_offer),
    Rule("return.offer_declined", "seller", "seller/offer_declined", _has_offer),
    Rule("return.offer_expired", "buyer", "buyer/offer_expired", _has_offer),
    Rule("return.offer_expired", "seller", "seller/offer_expired", _has_offer),
    Rule("return.replacement_ordered", "seller", "seller/replacement_ordered", _has_replacement),
    Rule("return.replacement_shipped", "buyer", "buyer/replacement_shipped", _has_replacement),
    Rule("return.replacement_unavailable", "buyer", "buyer/replacement_unavailable", _has_replacement),
    Rule("store_credit.granted", "buyer", "buyer/store_credit_granted", _has_buyer),
)

# Reminders that are pointless once a later state of the same return has been seen.
STALE_WHEN_SUPERSEDED: frozenset[str] = frozenset({"seller.response_due_soon"})

# The events a return can leave `requested` with (docs/product.md §5: authorize, reject, close; a
# returnless refund is an authorization first). The reminder is stale once one of them, with a later
# version, was seen; the events after them change nothing about it, so only these are noted.
LEAVES_REQUESTED: frozenset[str] = frozenset({"return.authorized", "return.rejected", "return.closed"})


def is_superseded(newest_seen: int | None, version: int) -> bool:
    """Is `version` of a return older than the newest one emails were recorded for (None: none yet)?"""
    return newest_seen is not None and newest_seen > version


# The bus binds only what can send something; the other registered types are not consumed at all.
SUBSCRIBED_TYPES: tuple[str, ...] = tuple(dict.fromkeys(rule.event_type for rule in RULES))

TEMPLATES: tuple[str, ...] = tuple(dict.fromkeys(rule.template for rule in RULES))


def decide(event_type: str, data: Any) -> list[tuple[Recipient, str]]:
    """(recipient, template) for every email this event calls for, in table order."""
    return [(rule.recipient, rule.template) for rule in RULES if rule.event_type == event_type and rule.when(data)]
