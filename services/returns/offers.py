"""Keep-it offers (docs/product.md §12): the seller offers part of the money back for the buyer to keep the item.

Pure functions like domain.py: each answers the return's next version (domain.advance, its action
named for the timeline) or raises IllegalTransition (409) / PolicyViolation (422 naming the field).
The accepted offer's refund is the refunds service's; `domain.mark_refunded` ends the return.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.returns.domain import KEPT_ITEM, OFFER_REFUNDABLE, PLATFORM, IllegalTransition, advance
from services.returns.policy import PolicyViolation
from shared.models import Actor, Return
from shared.money import Money
from shared.resolution_models import Offer, OfferStatus, ReplacementStatus, Settlement
from shared.rules import FieldProblem

# Timeline actions (and, in commands.EVENT_OF, the events they publish).
MAKE, ACCEPT, DECLINE, EXPIRE = "make_offer", "accept_offer", "decline_offer", "expire_offer"


class UnknownOffer(LookupError):
    """The return has no offer with this id (a 404 over HTTP)."""


def items_value(ret: Return) -> Money:
    """What the returned items cost: the most an offer may give back."""
    total = Money.zero(ret.currency)
    for line in ret.lines:
        total += line.unit_price.times(line.quantity)
    return total


def _still_open_to_offers(ret: Return, action: str) -> None:
    """Offers are for a return whose item has not come back, settled no other way."""
    if ret.settlement is not None:
        raise IllegalTransition(action, ret.status, KEPT_ITEM)
    if ret.status not in OFFER_REFUNDABLE:
        raise IllegalTransition(action, ret.status, f"no offer on a return that is {ret.status}")
    if ret.authorization is not None and ret.authorization.returnless:
        raise IllegalTransition(action, ret.status, "a refund without return is already under way")
    if ret.replacement is not None and ret.replacement.status in (ReplacementStatus.ORDERED, ReplacementStatus.SHIPPED):
        raise IllegalTransition(action, ret.status, f"the replacement is already {ret.replacement.status}")


def make_offer(
    ret: Return,
    offer_id: str,
    amount: Money,
    actor: Actor,
    now: datetime,
    validity: timedelta,
    note: str | None = None,
) -> Return:
    _still_open_to_offers(ret, MAKE)
    if ret.open_offer() is not None:
        raise IllegalTransition(MAKE, ret.status, "an offer is already open")
    if any(offer.offer_id == offer_id for offer in ret.offers):
        raise IllegalTransition(MAKE, ret.status, f"offer {offer_id} was made already")
    ceiling = items_value(ret)
    if amount.currency != ret.currency:
        raise PolicyViolation([FieldProblem("amount.currency", f"must be the return's currency {ret.currency}")])
    if not 0 < amount.amount <= ceiling.amount:
        reason = "must be more than 0" if amount.amount <= 0 else f"at most {ceiling.amount}: what the items cost"
        raise PolicyViolation([FieldProblem("amount.amount", reason)])
    offer = Offer(
        offer_id=offer_id,
        amount=amount,
        status=OfferStatus.OPEN,
        made_by=actor,
        made_at=now,
        expires_at=now + validity,
        note=note,
    )
    return advance(ret, MAKE, actor, now, note, offers=[*ret.offers, offer])


def _open(ret: Return, offer_id: str, action: str, now: datetime) -> Offer:
    """The offer `offer_id` if the buyer can still answer it."""
    offer = next((offer for offer in ret.offers if offer.offer_id == offer_id), None)
    if offer is None:
        raise UnknownOffer(offer_id)
    if offer.status == OfferStatus.EXPIRED or (offer.status == OfferStatus.OPEN and now > offer.expires_at):
        raise IllegalTransition(action, ret.status, f"the offer expired at {offer.expires_at.isoformat()}")
    if offer.status != OfferStatus.OPEN:
        raise IllegalTransition(action, ret.status, f"the offer was {offer.status} already")
    return offer


def _decided(ret: Return, offer: Offer, status: OfferStatus, now: datetime) -> list[Offer]:
    done = offer.model_copy(update={"status": status, "decided_at": now})
    return [done if o.offer_id == offer.offer_id else o for o in ret.offers]


def accept_offer(ret: Return, offer_id: str, actor: Actor, now: datetime, note: str | None = None) -> Return:
    offer = _open(ret, offer_id, ACCEPT, now)
    _still_open_to_offers(ret, ACCEPT)
    settlement = Settlement(kept_item=True, offer_id=offer.offer_id, amount=offer.amount)
    offers = _decided(ret, offer, OfferStatus.ACCEPTED, now)
    return advance(ret, ACCEPT, actor, now, note, offers=offers, settlement=settlement)


def decline_offer(ret: Return, offer_id: str, actor: Actor, now: datetime, note: str | None = None) -> Return:
    offer = _open(ret, offer_id, DECLINE, now)
    return advance(ret, DECLINE, actor, now, note, offers=_decided(ret, offer, OfferStatus.DECLINED, now))


def expire_offer(ret: Return, now: datetime) -> Return:
    """The open offer once past `expires_at` (the deadline job); whatever the return's status."""
    offer = ret.open_offer()
    if offer is None or now <= offer.expires_at:
        raise IllegalTransition(EXPIRE, ret.status, "no open offer past its expiry")
    offers = _decided(ret, offer, OfferStatus.EXPIRED, now)
    return advance(ret, EXPIRE, PLATFORM, now, "The buyer did not answer the offer in time.", offers=offers)
