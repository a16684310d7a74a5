"""Paying an A-to-z claim, the pure part: which claims are paid, how much, as what refund."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.refunds import claim_policy, domain
from shared.dispute_models import ClaimStatus
from shared.models import Actor, RefundKind, RefundStatus
from shared.money import Money
from tests.unit.refunds.builders import make_order
from tests.unit.refunds.claim_builders import contested_claim, granted_claim, refunded_by_seller

NOW = datetime(2025, 7, 9, 12, tzinfo=UTC)


def test_a_granted_claim_and_a_seller_refund_are_paid_and_a_contest_is_not():
    order = make_order()
    assert claim_policy.wants_paying(granted_claim(order, 1000, NOW))
    assert claim_policy.wants_paying(refunded_by_seller(order, 1000, NOW))
    assert not claim_policy.wants_paying(contested_claim(order, 1000, NOW))
    paying_without_payment = granted_claim(order, 1000, NOW).model_copy(update={"payment": None})
    assert not claim_policy.wants_paying(paying_without_payment)
    closed = granted_claim(order, 1000, NOW).model_copy(update={"status": ClaimStatus.CLOSED})
    assert not claim_policy.wants_paying(closed)


@pytest.mark.parametrize(
    ("asked", "available", "paid"),
    [
        (1000, 5000, 1000),  # room for all of it
        (1000, 1000, 1000),  # exactly the rest
        (1000, 400, 400),  # capped by what is left
        (1000, 1, 1),
        (1000, 0, 1000),  # nothing left: tried as asked, the payer records already_refunded
    ],
)
def test_a_claim_pays_what_was_asked_capped_by_what_is_left(asked, available, paid):
    assert claim_policy.amount_to_pay(asked, available) == paid


def test_a_payment_that_can_never_be_made_is_named():
    order = make_order(currency="USD")
    claim = granted_claim(order, 1000, NOW)
    assert claim_policy.problem(claim, order) is None
    assert claim.payment is not None
    in_euros = claim.payment.model_copy(update={"amount": Money(amount=1000, currency="EUR")})
    assert "EUR" in (claim_policy.problem(claim.model_copy(update={"payment": in_euros}), order) or "")
    nothing = claim.payment.model_copy(update={"amount": Money(amount=0, currency="USD")})
    assert "positive" in (claim_policy.problem(claim.model_copy(update={"payment": nothing}), order) or "")
    other = make_order()
    assert "order" in (claim_policy.problem(claim, other) or "")


def test_a_claim_refund_is_one_other_concession():
    breakdown = claim_policy.breakdown(Money(amount=1234, currency="JPY"))
    assert breakdown.lines == []
    assert (breakdown.other_concession.amount, breakdown.total.amount) == (1234, 1234)
    parts = (
        breakdown.items,
        breakdown.restocking_fee,
        breakdown.outbound_shipping,
        breakdown.return_shipping_concession,
    )
    assert {(part.amount, part.currency) for part in parts} == {(0, "JPY")}


def test_the_refund_of_a_granted_claim_is_the_platforms_automatic_refund_of_the_order():
    order = make_order(lines=[("L1", 1, 3000)], shipping=500)
    claim = granted_claim(order, 2000, NOW)
    refund = domain.for_claim(claim, order, 1500, now=NOW)
    assert claim.payment is not None and claim.decision is not None
    assert (refund.refund_id, refund.kind, refund.claim_id, refund.return_id) == (
        claim.payment.refund_id,
        RefundKind.CLAIM,
        claim.claim_id,
        None,  # a claim about a return does not refund that return
    )
    assert (refund.status, refund.version, refund.amount.amount, refund.currency) == (
        RefundStatus.PENDING,
        1,
        1500,
        "USD",
    )
    assert refund.breakdown == claim_policy.breakdown(Money(amount=1500, currency="USD"))
    assert (refund.order_id, refund.buyer, refund.seller) == (order.order_id, order.buyer, order.seller)
    assert (refund.actor, refund.automatic) == (claim.decision.actor, True)


def test_the_refund_a_seller_answered_a_claim_with_is_theirs():
    order = make_order(seller_id="s-9")
    refund = domain.for_claim(refunded_by_seller(order, 700, NOW), order, 700, now=NOW)
    assert (refund.actor, refund.automatic) == (Actor(role="seller", id="s-9"), False)
    no_step = refunded_by_seller(order, 700, NOW).model_copy(update={"timeline": []})
    assert domain.for_claim(no_step, order, 700, now=NOW).actor == domain.PLATFORM


def test_a_claim_refund_is_capped_to_the_rest_and_announces_its_claim():
    order = make_order()
    refund = domain.for_claim(granted_claim(order, 2000, NOW), order, 2000, now=NOW)
    capped = domain.cap(refund, 600, NOW, bonus_percent=Decimal(0))
    assert (capped.amount.amount, capped.breakdown.other_concession.amount, capped.version) == (600, 600, 2)
    with pytest.raises(ValueError):
        domain.cap(refund, 0, NOW, bonus_percent=Decimal(0))
    with pytest.raises(ValueError):
        domain.cap(refund, 2000, NOW, bonus_percent=Decimal(0))  # not a cap
    issued = domain.issue(capped, NOW, gateway="stripe", reference="re_1")
    with pytest.raises(domain.IllegalTransition):
        domain.cap(issued, 100, NOW, bonus_percent=Decimal(0))
    # refund.issued only: the claim's refund is not a return's, so no return.refunded.
    [event] = domain.events(issued)
    assert (event.type, event.subject, event.data["kind"], event.data["claim_id"]) == (
        "refund.issued",
        refund.refund_id,
        "claim",
        refund.claim_id,
    )


def test_a_claim_refund_on_a_direct_refund_is_refused():
    order = make_order()
    breakdown = claim_policy.breakdown(order.shipping_paid)
    direct = domain.for_order("rf_x", order, breakdown, actor=domain.PLATFORM, now=NOW)
    with pytest.raises(domain.IllegalTransition):
        domain.cap(direct, 1, NOW, bonus_percent=Decimal(0))
