"""Refund ids and keys, transitions, the events they announce, and what can never be paid.

The refund deadline is not the refunds service's rule: it is the return's `refund_due_at`
(tests/unit/returns/test_returns_domain.py covers the business-day arithmetic)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.refunds import domain
from services.refunds.policy import return_refund
from shared.models import Actor, RefundKind, RefundStatus
from tests.unit.refunds.builders import carried, make_order, make_return


def test_refund_ids_and_gateway_keys_are_stable():
    assert domain.return_refund_id("ret_1") == domain.return_refund_id("ret_1") != domain.return_refund_id("ret_2")
    assert domain.direct_refund_id("seller:s-1", "k") != domain.direct_refund_id("seller:s-2", "k")
    rid = domain.return_refund_id("ret_1")
    assert rid.startswith("rf_") and len(rid) == 35
    assert domain.gateway_key(rid, 0) == rid
    assert domain.gateway_key(rid, 1) != domain.gateway_key(rid, 2) != rid


def test_the_keys_of_every_round_so_far_are_derived_from_the_refund_id():
    rid = domain.return_refund_id("ret_1")
    assert domain.gateway_keys(rid, 0) == [rid]
    assert domain.gateway_keys(rid, 2) == [rid, domain.gateway_key(rid, 1), domain.gateway_key(rid, 2)]
    assert len(set(domain.gateway_keys(rid, 5))) == 6


NOW = datetime(2025, 7, 9, 12, tzinfo=UTC)


def due_refund(**kwargs):
    order = make_order()
    ret = make_return(order, ("L1", 2, "DEFECTIVE"), refund_mode="manual", **kwargs)
    breakdown = return_refund(ret, carried(order, ret))
    return ret, domain.for_return(
        ret,
        breakdown,
        status=RefundStatus.DUE,
        actor=domain.PLATFORM,
        now=NOW,
        due_at=ret.refund_due_at,
        bonus_percent=Decimal(0),
    )


def test_a_due_refund_taken_over_by_the_platform_is_automatic_and_issues_both_events():
    ret, refund = due_refund()
    assert (refund.kind, refund.version, refund.amount.amount) == (RefundKind.RETURN, 1, 3000)
    assert domain.events(refund) == []  # a due refund announces nothing yet
    pending = domain.take_over(refund, NOW)
    assert (pending.status, pending.automatic, pending.actor, pending.version) == (
        RefundStatus.PENDING,
        True,
        domain.PLATFORM,
        2,
    )
    issued = domain.issue(pending, NOW, gateway="stripe", reference="re_1")
    events = domain.events(issued)
    # return.refunded is the return's next version: it follows the received return's own events.
    assert [(e.type, e.subject, e.sequence) for e in events] == [
        ("refund.issued", refund.refund_id, 3),
        ("return.refunded", ret.return_id, ret.version + 1),
    ]
    assert events[0].data["amount"] == {"amount": 3000, "currency": "USD"}
    assert events[0].data["breakdown"]["items"]["amount"] == 3000
    assert domain.events(issued)[0].id == events[0].id  # the same state announces the same event id


def test_sellers_refund_replaces_a_due_or_failed_one_never_an_issued_one():
    _ret, refund = due_refund()
    order = make_order()
    seller = Actor(role="seller", id="s-1")
    partial = return_refund(one := make_return(order, ("L1", 1, "DEFECTIVE")), carried(order, one))
    replaced = domain.replace(refund, partial, seller, NOW, bonus_percent=Decimal(0))
    assert (replaced.status, replaced.amount.amount, replaced.actor, replaced.automatic) == (
        RefundStatus.PENDING,
        1500,
        seller,
        False,
    )
    failed = domain.fail(replaced, NOW, gateway="stripe", reason="gateway unavailable")
    assert [e.type for e in domain.events(failed)] == ["refund.failed"]
    again = domain.replace(failed, partial, seller, NOW, bonus_percent=Decimal(0))
    assert again.failure_reason is None and again.status == RefundStatus.PENDING
    issued = domain.issue(again, NOW, gateway="stripe", reference="re_2")
    for action in (
        lambda: domain.replace(issued, partial, seller, NOW, bonus_percent=Decimal(0)),
        lambda: domain.retry(issued, NOW),
        lambda: domain.take_over(issued, NOW),
        lambda: domain.issue(issued, NOW, gateway="x", reference=None),
    ):
        with pytest.raises(domain.IllegalTransition):
            action()


def test_only_a_failed_refund_can_be_retried():
    _, refund = due_refund()
    with pytest.raises(domain.IllegalTransition):
        domain.retry(refund, NOW)
    failed = domain.fail(domain.take_over(refund, NOW), NOW, gateway="stripe", reason="timeout")
    assert domain.retry(failed, NOW).status == RefundStatus.PENDING


@pytest.mark.parametrize(("amount", "payable"), [(1, True), (0, False), (-2599, False)])
def test_only_a_positive_refund_is_payable(amount, payable):
    _, refund = due_refund()
    refund = refund.model_copy(update={"amount": refund.amount.model_copy(update={"amount": amount})})
    reason = domain.unpayable(refund)
    assert (reason is None) == payable
    if not payable:
        assert reason.startswith("nothing to refund") and f"{amount} USD" in reason
