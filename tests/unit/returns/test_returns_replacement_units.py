"""A replacement replaces the units that came back, and once under way it holds them: the return
cannot be closed, and an expired one still counts them against the order (docs/product.md §12)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.returns import domain, offers, replacements
from services.returns.domain import IllegalTransition
from services.returns.eligibility import returned_so_far
from services.returns.schemas import CloseBody, ReceiveBody
from shared.models import ReplacementStatus, ReturnStatus
from shared.resolution_models import OfferStatus
from tests.unit.returns.builders import BUYER, RULES, SELLER
from tests.unit.returns.test_returns_replacements import (
    LATER,
    NOW,
    SERVICE,
    UNAVAILABLE,
    authorized,
    created,
    events,
    ordered_ahead,
    shipped_body,
)

S, R = ReturnStatus, ReplacementStatus


def received_as(ret, *lines: tuple[int, str]):
    body = ReceiveBody(lines=[{"line_id": "L1", "quantity": q, "condition": c} for q, c in lines])
    return replacements.with_follow_ups("return.received", domain.receive(ret, body, SELLER, LATER, RULES), LATER)


def test_at_receipt_only_the_units_that_came_back_are_ordered():
    [(_, auth)] = authorized(created(("L1", 2, "DEFECTIVE")))
    changes = received_as(auth, (1, "sellable"))  # one of the two units came back
    assert events(changes) == ["return.received", "return.replacement_ordered"]
    ordered = changes[-1][1]
    assert [(line.line_id, line.quantity) for line in ordered.replacement.lines] == [("L1", 1)]


def test_with_nothing_back_nothing_is_ordered_and_the_seller_or_an_agent_decides():
    [(_, auth)] = authorized(created(("L1", 2, "DEFECTIVE")))
    changes = received_as(auth, (0, "missing"))
    assert events(changes) == ["return.received"]
    got = changes[-1][1]
    assert got.replacement.status == R.REQUESTED and got.status == S.RECEIVED
    # Reported unavailable, it falls back to a refund (of what came back: nothing) by the usual deadline.
    fell_back = replacements.give_up(got, UNAVAILABLE, SERVICE, LATER, RULES)
    assert fell_back.replacement.status == R.UNAVAILABLE and fell_back.refund_due_at is not None


def test_a_return_whose_replacement_is_ordered_or_sent_cannot_be_closed():
    ordered = ordered_ahead()
    sent = replacements.ship(ordered, shipped_body(), SERVICE, NOW)
    for ret in (ordered, sent):
        with pytest.raises(IllegalTransition, match="replacement is ordered or sent"):
            domain.close(ret, CloseBody(code="BUYER_WITHDREW"), BUYER, LATER)
    # Given up, the return is an ordinary one again: it may be closed.
    given_up = replacements.give_up(ordered, UNAVAILABLE, SERVICE, NOW, RULES)
    assert domain.close(given_up, CloseBody(code="BUYER_WITHDREW"), BUYER, LATER).status == S.CLOSED


def test_an_expired_return_whose_replacement_was_sent_still_holds_its_units():
    sent = replacements.ship(ordered_ahead(), shipped_body(), SERVICE, NOW)
    expired = domain.expire(sent, LATER)
    assert expired.status == S.EXPIRED
    assert returned_so_far([expired]) == {"L1": 1}  # the buyer has the replacement: not returnable again
    plain = domain.expire(authorized(created())[0][1], LATER)
    assert returned_so_far([plain]) == {}
    ordered_only = domain.expire(ordered_ahead(), LATER)  # ordered, never sent: the buyer has nothing
    assert returned_so_far([ordered_only]) == {}


def test_an_open_offer_lapses_when_the_replacement_is_ordered_and_a_kept_item_falls_back_to_nothing():
    ret = created(replacement_ships="at_authorization")
    offered = offers.make_offer(ret, "ofr_1", ret.lines[0].unit_price, SELLER, NOW, timedelta(hours=72))
    (_, auth), (_, ordered) = authorized(offered)
    assert auth.offers[0].status == OfferStatus.OPEN
    assert ordered.offers[0].status == OfferStatus.EXPIRED and ordered.open_offer() is None
    # Accepted before any replacement was ordered, the buyer keeps the item: no fallback to a refund.
    kept = offers.accept_offer(
        offers.make_offer(created(), "ofr_2", ret.lines[0].unit_price, SELLER, NOW, timedelta(hours=72)),
        "ofr_2",
        BUYER,
        NOW,
    )
    with pytest.raises(IllegalTransition, match="keep the item"):
        replacements.give_up(kept, UNAVAILABLE, SERVICE, LATER, RULES)


def test_feedback_waits_for_the_refund_but_not_for_a_replacement():
    """`return.refunded` takes the version after receipt: feedback taking it first would make
    subscribers drop the refund as stale."""
    [(_, auth)] = authorized(created())
    body = ReceiveBody(lines=[{"line_id": "L1", "quantity": 1, "condition": "sellable"}])
    got = domain.receive(auth, body, SELLER, LATER, RULES)
    assert got.replacing()  # a replacement return: nothing is refunded, feedback is fine
    assert domain.record_feedback(got, False, BUYER, LATER).feedback is not None
    fell_back = replacements.give_up(got, UNAVAILABLE, SERVICE, LATER, RULES)  # now its refund is to come
    with pytest.raises(IllegalTransition, match="refund is still to come"):
        domain.record_feedback(fell_back, False, BUYER, LATER)
