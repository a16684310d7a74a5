"""Keep-it offers (services/returns/offers.py): make, accept, decline, expire, and what an accepted one stops."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.returns import domain, offers
from services.returns.domain import IllegalTransition
from services.returns.policy import PolicyViolation
from services.returns.schemas import AuthorizeBody
from shared.models import RefundKind, Return, ReturnStatus
from shared.money import Money
from shared.resolution_models import (
    OfferStatus,
    Replacement,
    ReplacementLine,
    ReplacementStatus,
    ReplacementTiming,
    Resolution,
)
from tests.unit.returns.builders import BUYER, RULES, SELLER
from tests.unit.returns.test_returns_domain import AGENT, NOW, TRANSITIONS, in_status, refund, requested

S = ReturnStatus
VALIDITY = timedelta(hours=72)
LATER = NOW + timedelta(hours=1)


def usd(amount: int) -> Money:
    return Money(amount=amount, currency="USD")


def offered(ret: Return | None = None, amount: int = 1000, offer_id: str = "ofr_1") -> Return:
    return offers.make_offer(ret or requested(), offer_id, usd(amount), SELLER, NOW, VALIDITY, "keep it")


def accepted(ret: Return | None = None) -> Return:
    return offers.accept_offer(offered(ret), "ofr_1", BUYER, LATER)


def test_items_value_is_what_the_returned_units_cost():
    assert offers.items_value(requested()) == usd(3000)  # L1: 2 x 1500
    assert offers.items_value(requested(("L1", 1, "DEFECTIVE"), ("L2", 1, "DEFECTIVE"))) == usd(1500 + 4999)


@pytest.mark.parametrize("status", [S.REQUESTED, S.AUTHORIZED, S.SHIPPED])
def test_an_offer_is_appended_open_with_its_expiry(status):
    before = in_status(status)
    ret = offered(before)
    (offer,) = ret.offers
    assert offer.offer_id == "ofr_1" and offer.status == OfferStatus.OPEN and offer.amount == usd(1000)
    assert offer.made_by == SELLER and offer.made_at == NOW and offer.expires_at == NOW + VALIDITY
    assert offer.note == "keep it" and offer.decided_at is None
    assert ret.status == status and ret.version == before.version + 1 and ret.settlement is None
    assert ret.timeline[-1].action == offers.MAKE and ret.open_offer() == offer


@pytest.mark.parametrize("status", [S.RECEIVED, S.REFUNDED, S.REJECTED, S.CLOSED, S.EXPIRED, S.REPLACED])
def test_no_offer_once_the_item_came_back_or_the_return_ended(status):
    with pytest.raises(IllegalTransition):
        offered(in_status(status))


def test_one_open_offer_at_a_time():
    ret = offered()
    with pytest.raises(IllegalTransition, match="an offer is already open"):
        offered(ret, offer_id="ofr_2")
    declined = offers.decline_offer(ret, "ofr_1", BUYER, LATER)
    again = offered(declined, amount=2000, offer_id="ofr_2")
    assert [o.status for o in again.offers] == [OfferStatus.DECLINED, OfferStatus.OPEN]


def test_no_offer_on_a_returnless_authorization():
    ret = domain.authorize(requested(), AuthorizeBody(returnless=True), SELLER, NOW, RULES)
    with pytest.raises(IllegalTransition, match="refund without return"):
        offered(ret)


@pytest.mark.parametrize("status", [ReplacementStatus.ORDERED, ReplacementStatus.SHIPPED])
def test_no_offer_once_the_replacement_is_on_its_way(status):
    replacement = Replacement(
        status=status,
        ships=ReplacementTiming.AT_RECEIPT,
        lines=[ReplacementLine(line_id="L1", sku="SKU-MUG", quantity=2)],
    )
    ret = requested().model_copy(update={"resolution": Resolution.REPLACEMENT, "replacement": replacement})
    with pytest.raises(IllegalTransition, match="replacement"):
        offered(ret)
    still_requested = ret.model_copy(update={"replacement": replacement.model_copy(update={"status": "requested"})})
    assert offered(still_requested).open_offer() is not None


@pytest.mark.parametrize(
    ("amount", "field", "reason"),
    [
        (usd(3001), "amount.amount", "at most 3000"),
        (usd(0), "amount.amount", "more than 0"),
        (usd(-5), "amount.amount", "more than 0"),
        (Money(amount=1000, currency="EUR"), "amount.currency", "USD"),
    ],
)
def test_the_amount_is_in_the_currency_and_at_most_the_items_value(amount, field, reason):
    with pytest.raises(PolicyViolation) as caught:
        offers.make_offer(requested(), "ofr_1", amount, SELLER, NOW, VALIDITY)
    (problem,) = caught.value.problems
    assert problem.field == field and reason in problem.reason


def test_the_whole_items_value_may_be_offered():
    assert offered(amount=3000).open_offer().amount == usd(3000)


def test_accepting_settles_the_return_without_changing_its_status():
    ret = accepted(in_status(S.SHIPPED))
    (offer,) = ret.offers
    assert offer.status == OfferStatus.ACCEPTED and offer.decided_at == LATER
    assert ret.settlement.kept_item and ret.settlement.offer_id == "ofr_1" and ret.settlement.amount == usd(1000)
    assert ret.status == S.SHIPPED and ret.open_offer() is None and ret.timeline[-1].action == offers.ACCEPT
    assert ret.timeline[-1].actor == BUYER


def test_an_offer_past_its_expiry_cannot_be_accepted_or_declined():
    ret = offered()
    late = NOW + VALIDITY + timedelta(seconds=1)
    for answer in (offers.accept_offer, offers.decline_offer):
        with pytest.raises(IllegalTransition, match="the offer expired at 2025-03-10T15:00:00"):
            answer(ret, "ofr_1", BUYER, late)
    assert offers.accept_offer(ret, "ofr_1", AGENT, NOW + VALIDITY).settlement is not None  # up to the second


def test_an_answered_offer_cannot_be_answered_again():
    ret = accepted()
    for answer in (offers.accept_offer, offers.decline_offer):
        with pytest.raises(IllegalTransition, match="accepted already"):
            answer(ret, "ofr_1", BUYER, LATER)
    with pytest.raises(offers.UnknownOffer):
        offers.accept_offer(ret, "ofr_nope", BUYER, LATER)


def test_no_acceptance_once_the_item_came_back():
    ret = offered(in_status(S.SHIPPED)).model_copy(update={"status": S.RECEIVED})
    with pytest.raises(IllegalTransition):
        offers.accept_offer(ret, "ofr_1", BUYER, LATER)


def test_declining_lets_the_return_go_on():
    ret = offers.decline_offer(offered(), "ofr_1", BUYER, LATER, "no thanks")
    assert ret.offers[0].status == OfferStatus.DECLINED and ret.offers[0].decided_at == LATER
    assert ret.settlement is None and ret.timeline[-1].action == offers.DECLINE and ret.timeline[-1].note == "no thanks"
    assert domain.authorize(ret, AuthorizeBody(), SELLER, LATER, RULES).status == S.AUTHORIZED


def test_expiry_only_past_the_deadline_and_only_once():
    ret = offered()
    with pytest.raises(IllegalTransition):
        offers.expire_offer(ret, NOW + VALIDITY)
    expired = offers.expire_offer(ret, NOW + VALIDITY + timedelta(seconds=1))
    assert expired.offers[0].status == OfferStatus.EXPIRED and expired.offers[0].decided_at > NOW + VALIDITY
    assert expired.timeline[-1].actor == domain.PLATFORM and expired.status == S.REQUESTED
    with pytest.raises(IllegalTransition):
        offers.expire_offer(expired, NOW + VALIDITY * 2)


@pytest.mark.parametrize("action", ["authorize", "reject", "close", "ship", "receive", "expire", "remind"])
@pytest.mark.parametrize("status", [S.REQUESTED, S.AUTHORIZED, S.SHIPPED])
def test_an_accepted_offer_stops_the_items_journey(action, status):
    ret = accepted(in_status(status))
    with pytest.raises(IllegalTransition, match="the buyer accepted an offer to keep the item"):
        TRANSITIONS[action](ret)
    with pytest.raises(IllegalTransition, match="keep the item"):
        offered(ret, offer_id="ofr_2")


def test_platform_authorization_is_refused_once_settled():
    with pytest.raises(IllegalTransition, match="keep the item"):
        domain.platform_authorize(accepted(), NOW, RULES)


@pytest.mark.parametrize("status", [S.REQUESTED, S.AUTHORIZED, S.SHIPPED])
def test_the_offers_refund_ends_the_return_refunded(status):
    ret = accepted(in_status(status))
    paid = refund(kind=RefundKind.OFFER, offer_id="ofr_1", refund_id="rf_ofr_1", amount=usd(1000))
    after = domain.mark_refunded(ret, paid, NOW)
    assert after.status == S.REFUNDED and after.refund.refund_id == "rf_ofr_1" and after.refund.amount == usd(1000)
    assert domain.mark_refunded(after, paid, NOW) is None


def test_an_offer_refund_must_pay_the_accepted_offer():
    paid = refund(kind=RefundKind.OFFER, offer_id="ofr_other", amount=usd(1000))
    with pytest.raises(IllegalTransition):
        domain.mark_refunded(accepted(), paid, NOW)
    with pytest.raises(IllegalTransition):
        domain.mark_refunded(offered(), refund(kind=RefundKind.OFFER, offer_id="ofr_1"), NOW)
    # A return refund still needs the item back (or a returnless authorization).
    with pytest.raises(IllegalTransition):
        domain.mark_refunded(in_status(S.REQUESTED), refund(), NOW)


@pytest.mark.parametrize("action", ["receive", "reject", "close", "expire"])
def test_an_open_offer_lapses_when_the_item_comes_back_or_the_return_ends(action):
    ret = offered(in_status(S.AUTHORIZED))
    after = domain.advance(ret, action, SELLER, LATER)
    assert after.open_offer() is None
    [offer] = after.offers
    assert (offer.status, offer.decided_at) == (OfferStatus.EXPIRED, LATER)


def test_steps_that_keep_the_return_open_to_offers_leave_the_offer_open():
    ret = offered(in_status(S.AUTHORIZED))
    assert domain.advance(ret, "ship", BUYER, LATER).open_offer() is not None
