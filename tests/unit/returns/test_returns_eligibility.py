"""Opening a return: the request against the order snapshot, the window, quantities, automatic answers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.returns.eligibility import check_request, open_return, returned_so_far
from services.returns.policy import PolicyViolation
from shared.models import Fault, LabelType, ReturnStatus
from shared.money import Money
from tests.unit.returns.builders import BUYER, RULES, make_order, make_request, policy

NOW = make_order().delivered_at + timedelta(days=5)


def open_(order, request, *, pol=None, already=None, flagged=False, now=NOW):
    return open_return(
        order,
        request,
        return_id="ret_1",
        policy=pol or policy(),
        rules=RULES,
        already_returned=already or {},
        buyer_flagged=flagged,
        actor=BUYER,
        now=now,
    )


def fields(order, request, *, already=None, now=NOW, pol=None):
    return [p.field for p in check_request(order, request, pol or policy(), RULES, already or {}, now)]


def test_a_valid_request_opens_a_requested_return_from_the_snapshot():
    order = make_order()
    [(event, ret)] = open_(order, make_request(order, ("L1", 2, "NO_LONGER_NEEDED")))
    assert event == "return.created"
    assert ret.status == ReturnStatus.REQUESTED and ret.version == 1
    assert ret.lines[0].unit_price == Money(amount=1500, currency="USD")  # from the order, never the client
    assert ret.lines[0].quantity == 2 and ret.lines[0].fault == Fault.BUYER
    assert ret.fault == Fault.BUYER and ret.in_policy and not ret.whole_order
    assert ret.response_due_at == NOW + timedelta(hours=48)
    assert ret.buyer.id == "b-1" and ret.seller.id == "s-1"
    assert [(e.action, e.actor) for e in ret.timeline] == [("request", BUYER)]


@pytest.mark.parametrize(
    "lines, field",
    [
        ((("L9", 1, "DEFECTIVE"),), "lines[0].line_id"),
        ((("L1", 4, "DEFECTIVE"),), "lines[0].quantity"),
        ((("L1", 1, "DEFECTIVE"), ("L1", 1, "DEFECTIVE")), "lines[1].line_id"),
    ],
)
def test_wrong_lines_and_quantities_are_named(lines, field):
    order = make_order()
    assert fields(order, make_request(order, *lines)) == [field]
    with pytest.raises(PolicyViolation):
        open_(order, make_request(order, *lines))


def test_partial_quantities_across_several_returns():
    order = make_order()  # L1 x3
    first = open_(order, make_request(order, ("L1", 2, "DEFECTIVE")))[0][1]
    already = returned_so_far([first])
    assert already == {"L1": 2}
    assert fields(order, make_request(order, ("L1", 1, "DEFECTIVE")), already=already) == []
    assert fields(order, make_request(order, ("L1", 2, "DEFECTIVE")), already=already) == ["lines[0].quantity"]
    second = open_(order, make_request(order, ("L1", 1, "DEFECTIVE"), ("L2", 1, "DEFECTIVE")), already=already)[0][1]
    assert second.whole_order
    assert returned_so_far([first, second]) == {"L1": 3, "L2": 1}


@pytest.mark.parametrize("status", [ReturnStatus.REJECTED, ReturnStatus.CLOSED, ReturnStatus.EXPIRED])
def test_units_of_returns_that_never_came_back_can_be_returned_again(status):
    order = make_order()
    first = open_(order, make_request(order, ("L1", 3, "DEFECTIVE")))[0][1]
    assert returned_so_far([first.model_copy(update={"status": status})]) == {}


def test_non_returnable_category_and_window():
    order = make_order(lines=[{"line_id": "G", "category": "gift_cards"}, {"line_id": "K"}])
    assert fields(order, make_request(order, ("G", 1, "DEFECTIVE"))) == ["lines[0].line_id"]
    day_31 = order.delivered_at + timedelta(days=31)
    assert fields(order, make_request(order, ("K", 1, "DEFECTIVE")), now=day_31) == ["lines[0].line_id"]
    assert (
        fields(order, make_request(order, ("K", 1, "DEFECTIVE")), now=day_31, pol=policy(return_window_days=31)) == []
    )


def test_a_request_before_delivery_is_refused():
    order = make_order()
    assert fields(order, make_request(order), now=order.delivered_at - timedelta(days=1)) == ["order_id"]


def test_an_agent_exception_opens_an_out_of_policy_return():
    order = make_order()
    late = order.delivered_at + timedelta(days=40)
    [(_, ret)] = open_(
        order,
        make_request(order, ("L1", 1, "DEFECTIVE"), policy_exception=True),
        pol=policy(auto_authorize=True),
        now=late,
    )
    assert not ret.in_policy  # and so never authorized automatically
    [(_, ok)] = open_(order, make_request(order, ("L1", 1, "DEFECTIVE"), policy_exception=True))
    assert ok.in_policy


def test_quantities_hold_even_with_an_exception():
    order = make_order()
    assert fields(order, make_request(order, ("L1", 4, "DEFECTIVE"), policy_exception=True)) == ["lines[0].quantity"]


def test_auto_authorization_emits_created_then_authorized():
    order = make_order()
    changes = open_(order, make_request(order, ("L1", 1, "DEFECTIVE")), pol=policy(auto_authorize=True))
    assert [(event, ret.version, ret.status) for event, ret in changes] == [
        ("return.created", 1, ReturnStatus.REQUESTED),
        ("return.authorized", 2, ReturnStatus.AUTHORIZED),
    ]
    auth = changes[1][1].authorization
    assert auth.automatic and not auth.late and not auth.returnless
    assert auth.return_shipping_paid_by == Fault.SELLER and auth.label_type == LabelType.PREPAID
    assert changes[1][1].ship_by == NOW + timedelta(days=30)


def test_auto_authorization_for_buyer_fault_gives_an_unpaid_label_with_default_postage():
    order = make_order()
    changes = open_(order, make_request(order), pol=policy(auto_authorize=True))
    auth = changes[-1][1].authorization
    assert auth.return_shipping_paid_by == Fault.BUYER and auth.label_type == LabelType.UNPAID
    assert auth.return_postage == Money(amount=899, currency="USD")


def test_no_auto_authorization_for_flagged_buyers_or_high_value_items():
    order = make_order(lines=[{"line_id": "TV", "unit_price": {"amount": 90000, "currency": "USD"}}, {"line_id": "K"}])
    auto = policy(auto_authorize=True)
    assert len(open_(order, make_request(order, ("K", 1, "DEFECTIVE")), pol=auto, flagged=True)) == 1
    assert len(open_(order, make_request(order, ("TV", 1, "DEFECTIVE"), ("K", 1, "DEFECTIVE")), pol=auto)) == 1
    assert len(open_(order, make_request(order, ("K", 1, "DEFECTIVE")), pol=auto)) == 2


def test_returnless_refund_under_the_threshold_but_never_for_flagged_buyers():
    order = make_order()
    cheap = policy(returnless_threshold=Money(amount=1500, currency="USD"))
    changes = open_(order, make_request(order, ("L1", 1, "NO_LONGER_NEEDED")), pol=cheap)
    ret = changes[-1][1]
    assert ret.status == ReturnStatus.AUTHORIZED and ret.authorization.returnless
    assert ret.authorization.label_type is None and ret.ship_by is None
    assert len(open_(order, make_request(order, ("L1", 1, "NO_LONGER_NEEDED")), pol=cheap, flagged=True)) == 1
    assert len(open_(order, make_request(order, ("L1", 2, "NO_LONGER_NEEDED")), pol=cheap)) == 1  # 30.00 > 15.00
