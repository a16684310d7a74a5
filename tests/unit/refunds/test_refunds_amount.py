"""docs/product.md §6 arithmetic: every fault, condition, concession, partial quantity; USD, JPY (0), BHD (3).

The restocking fee is not decided here: each received line carries the percent the returns service
put there (tests/unit/returns covers that rule); these tests check that it is applied as it is."""

from __future__ import annotations

import pytest

from services.refunds.policy import (
    CameBack,
    LineChoice,
    RefundRuleBroken,
    direct_refund,
    outbound_carrier,
    refundable_units,
    return_refund,
    whole_by_itself,
)
from shared.models import ItemCondition
from shared.money import INT64_MAX, Money
from shared.postage import postage_paid_by_buyer
from tests.unit.refunds.builders import carried, make_order, make_return

BUYER_REASON, SELLER_REASON = "NO_LONGER_NEEDED", "DEFECTIVE"
# currency, unit price, 15 % of two units rounded half-up (BHD: 3703.5 fils -> 3704)
CURRENCIES = [("USD", 1999, 600), ("JPY", 1333, 400), ("BHD", 12345, 3704)]
FEE_CONDITIONS = {"opened", "used", "damaged_by_buyer"}


def total_of(b) -> int:
    return (
        b.items.amount
        - b.restocking_fee.amount
        + b.outbound_shipping.amount
        + b.return_shipping_concession.amount
        + b.other_concession.amount
    )


@pytest.mark.parametrize(("currency", "price", "fee_for_two"), CURRENCIES)
@pytest.mark.parametrize("reason", [BUYER_REASON, SELLER_REASON])
@pytest.mark.parametrize("condition", [c.value for c in ItemCondition])
def test_fault_and_condition_decide_units_and_the_returns_fee_is_applied(
    currency, price, fee_for_two, reason, condition
):
    order = make_order(currency=currency, lines=[("L1", 2, price), ("L2", 1, 500)], shipping=700)
    ret = make_return(order, ("L1", 2, reason), restocking=15, received=[("L1", 2, condition)])

    b = return_refund(ret, carried(order, ret))

    not_back = condition == "missing" or (condition == "wrong_item" and reason == BUYER_REASON)
    units = 0 if not_back else 2
    fee = fee_for_two if reason == BUYER_REASON and condition in FEE_CONDITIONS else 0
    assert b.items == Money(amount=price * units, currency=currency)
    assert b.restocking_fee == Money(amount=fee, currency=currency)
    assert b.outbound_shipping.amount == 0  # not the whole order
    assert b.total == Money(amount=price * units - fee, currency=currency)
    assert [(line.line_id, line.quantity) for line in b.lines] == ([] if not_back else [("L1", 2)])
    assert {m.currency for m in (b.items, b.restocking_fee, b.outbound_shipping, b.total)} == {currency}


def test_percentages_round_half_up_per_line_not_on_the_sum():
    order = make_order(currency="JPY", lines=[("L1", 1, 5), ("L2", 1, 5)], shipping=0)
    ret = make_return(
        order,
        ("L1", 1, BUYER_REASON),
        ("L2", 1, BUYER_REASON),
        restocking=10,
        received=[("L1", 1, "opened"), ("L2", 1, "used")],
    )
    b = return_refund(ret, carried(order, ret))
    # 0.5 yen per line rounds up to 1 each: 2, where 10 % of the 10 yen sum would be 1.
    assert [line.restocking_fee.amount for line in b.lines] == [1, 1]
    assert b.restocking_fee.amount == 2 and b.total.amount == 8


def test_bhd_three_decimals_half_up():
    order = make_order(currency="BHD", lines=[("L1", 1, 1005)], shipping=500)
    ret = make_return(order, ("L1", 1, BUYER_REASON), restocking="12.5", received=[("L1", 1, "used")])
    b = return_refund(ret, carried(order, ret))
    assert b.restocking_fee == Money(amount=126, currency="BHD")  # 125.625 fils
    assert b.total == Money(amount=879, currency="BHD")


@pytest.mark.parametrize(
    ("policy_percent", "received_percent", "fee"),
    [
        (20, 20, 200),
        (0, 20, 200),  # the percent on the received line, not the policy's
        (20, 0, 0),  # returns decided no fee applies: none is taken
        (80, 80, 800),  # no cap of its own: the cap is the returns service's, applied before
        (10, "12.5", 125),
    ],
)
def test_the_fee_percent_carried_by_the_received_line_is_applied_as_it_is(policy_percent, received_percent, fee):
    order = make_order(lines=[("L1", 1, 1000)])
    ret = make_return(
        order, ("L1", 1, BUYER_REASON), restocking=policy_percent, received=[("L1", 1, "opened", received_percent)]
    )
    b = return_refund(ret, carried(order, ret))
    assert (b.restocking_fee.amount, b.total.amount) == (fee, 1000 - fee)
    assert [line.restocking_fee.amount for line in b.lines] == [fee]


def test_units_with_different_fees_each_round_on_their_own_and_a_partial_refund_takes_the_cheapest():
    order = make_order(currency="JPY", lines=[("L1", 3, 5)], shipping=0)
    ret = make_return(
        order,
        ("L1", 3, BUYER_REASON),
        received=[("L1", 1, "used", 30), ("L1", 1, "sellable", 0), ("L1", 1, "opened", 10)],
    )
    assert refundable_units(ret)["L1"].by_fee == ((0, 1), (10, 1), (30, 1))
    # 0.5 yen rounds up to 1, 1.5 yen to 2: 3, where 40 % of 5 yen on one rounding would be 2.
    assert return_refund(ret, carried(order, ret)).restocking_fee.amount == 3
    assert return_refund(ret, carried(order, ret), lines=[LineChoice("L1", 2)]).restocking_fee.amount == 1


def test_fee_only_on_buyer_fault_lines_of_a_mixed_return():
    order = make_order(lines=[("L1", 1, 1000), ("L2", 1, 2000)], shipping=599)
    ret = make_return(
        order,
        ("L1", 1, BUYER_REASON),
        ("L2", 1, SELLER_REASON),
        restocking=20,
        whole_order=True,
        received=[("L1", 1, "opened"), ("L2", 1, "opened")],
    )
    b = return_refund(ret, carried(order, ret))
    assert [(line.line_id, line.restocking_fee.amount) for line in b.lines] == [("L1", 200), ("L2", 0)]
    # seller at fault (one line is enough) and every unit back: outbound shipping is refunded
    assert b.outbound_shipping.amount == 599
    assert b.total.amount == 1000 - 200 + 2000 + 599


@pytest.mark.parametrize(
    ("reason", "quantity", "received", "choice", "outbound"),
    [
        (SELLER_REASON, 2, None, None, 599),
        (SELLER_REASON, 1, None, None, 0),  # one unit of two: not the whole order
        (BUYER_REASON, 2, None, None, 0),
        (SELLER_REASON, 2, [("L1", 1, "sellable"), ("L1", 1, "missing")], None, 0),
        (SELLER_REASON, 2, None, [LineChoice("L1", 1)], 0),
    ],
)
def test_outbound_shipping_only_when_seller_at_fault_and_whole_order_back(reason, quantity, received, choice, outbound):
    order = make_order(lines=[("L1", 2, 1000)], shipping=599)
    ret = make_return(order, ("L1", quantity, reason), received=received)
    assert return_refund(ret, carried(order, ret), lines=choice).outbound_shipping.amount == outbound


@pytest.mark.parametrize(
    ("label", "paid_by", "postage", "concession"),
    [
        ("unpaid", "seller", 899, 899),  # the seller owes postage the buyer paid
        ("unpaid", "buyer", 899, 0),
        ("prepaid", "seller", None, 0),  # the seller bought the label: nothing to give back
        ("unpaid", "seller", None, 0),
    ],
)
def test_return_shipping_concession(label, paid_by, postage, concession):
    order = make_order(lines=[("L1", 1, 1000)])
    ret = make_return(order, ("L1", 1, BUYER_REASON), label=label, paid_by=paid_by, postage=postage)
    b = return_refund(ret, carried(order, ret))
    assert b.return_shipping_concession.amount == concession
    assert b.total.amount == 1000 + concession


@pytest.mark.parametrize(
    ("label", "paid_by", "postage", "returnless", "paid"),
    [
        ("unpaid", "seller", 750, False, 750),  # the buyer paid it; the seller owes it back
        ("unpaid", "buyer", 750, False, 750),  # the buyer paid it and owes it: still paid on this order
        ("unpaid", "seller", 0, False, None),
        ("unpaid", "seller", None, False, None),
        ("prepaid", "seller", None, False, None),  # the seller bought the label
        (None, "seller", None, True, None),  # nothing is sent back
    ],
)
def test_the_postage_the_buyer_paid_counts_toward_what_they_paid(label, paid_by, postage, returnless, paid):
    order = make_order(lines=[("L1", 1, 3000)])
    ret = make_return(
        order,
        ("L1", 1, "WRONG_ITEM_SENT"),
        label=label,
        paid_by=paid_by,
        postage=postage,
        returnless=returnless,
        status="authorized" if returnless else "received",
    )
    got = postage_paid_by_buyer(ret)
    assert (None if got is None else got.amount) == paid


@pytest.mark.parametrize("shipping", [0, 599])
def test_a_seller_fault_whole_order_on_an_unpaid_label_comes_to_items_shipping_and_postage(shipping):
    # Issue 11's order: the cap must hold the 750 of postage too, or this can never be paid.
    order = make_order(lines=[("L1", 1, 3000)], shipping=shipping)
    ret = make_return(
        order, ("L1", 1, "WRONG_ITEM_SENT"), whole_order=True, label="unpaid", paid_by="seller", postage=750
    )
    computed = return_refund(ret, carried(order, ret))
    chosen = return_refund(ret, carried(order, ret), return_shipping_concession=Money(amount=750, currency="USD"))
    assert computed.total.amount == chosen.total.amount == 3000 + shipping + 750
    assert computed.total.amount == order.total_paid() + postage_paid_by_buyer(ret).amount


@pytest.mark.parametrize(
    ("concessions", "fields"),
    [
        ({"other_concession": INT64_MAX}, ["other_concession.amount"]),
        (
            {"return_shipping_concession": INT64_MAX, "other_concession": 1},
            ["return_shipping_concession.amount", "other_concession.amount"],
        ),
    ],
)
def test_concessions_that_would_overflow_64_bits_are_refused_by_name(concessions, fields):
    order = make_order(lines=[("L1", 1, 1000)])
    ret = make_return(order, ("L1", 1, SELLER_REASON))
    with pytest.raises(RefundRuleBroken) as caught:
        return_refund(
            ret,
            carried(order, ret),
            **{name: Money(amount=amount, currency="USD") for name, amount in concessions.items()},
        )
    assert [p.field for p in caught.value.problems] == fields
    with pytest.raises(RefundRuleBroken) as caught:
        direct_refund(order, other_concession=Money(amount=INT64_MAX, currency="USD"))
    assert [p.field for p in caught.value.problems] == ["other_concession.amount"]


def test_seller_concessions_replace_the_computed_ones():
    order = make_order(currency="JPY", lines=[("L1", 1, 3000)])
    ret = make_return(order, ("L1", 1, BUYER_REASON), label="unpaid", paid_by="seller", postage=800)
    b = return_refund(
        ret,
        carried(order, ret),
        return_shipping_concession=Money(amount=500, currency="JPY"),
        other_concession=Money(amount=250, currency="JPY"),
    )
    assert (b.return_shipping_concession.amount, b.other_concession.amount, b.total.amount) == (500, 250, 3750)


@pytest.mark.parametrize(("quantity", "fee"), [(1, 0), (2, 100), (3, 200), (0, 0)])
def test_partial_quantity_leaves_out_fee_bearing_units_first(quantity, fee):
    order = make_order(lines=[("L1", 3, 1000)])
    ret = make_return(
        order, ("L1", 3, BUYER_REASON), restocking=10, received=[("L1", 1, "sellable"), ("L1", 2, "opened")]
    )
    assert refundable_units(ret)["L1"].by_fee == ((0, 1), (10, 2))
    b = return_refund(ret, carried(order, ret), lines=[LineChoice("L1", quantity)])
    assert b.items.amount == 1000 * quantity
    assert b.restocking_fee.amount == fee
    assert b.total.amount == total_of(b)


def test_returnless_refund_has_no_fee_and_no_return_shipping():
    order = make_order(lines=[("L1", 1, 800)], shipping=300)
    ret = make_return(
        order,
        ("L1", 1, SELLER_REASON),
        returnless=True,
        restocking=20,
        whole_order=True,
        label="unpaid",
        postage=899,
        status="authorized",
    )
    b = return_refund(ret, carried(order, ret))
    assert (
        b.items.amount,
        b.restocking_fee.amount,
        b.outbound_shipping.amount,
        b.return_shipping_concession.amount,
        b.total.amount,
    ) == (800, 0, 300, 0, 1100)


@pytest.mark.parametrize(
    ("choices", "concessions", "fields"),
    [
        ([LineChoice("L9", 1)], {}, ["lines[0].line_id"]),
        ([LineChoice("L1", 3)], {}, ["lines[0].quantity"]),
        ([LineChoice("L1", -1)], {}, ["lines[0].quantity"]),
        ([LineChoice("L1", 1), LineChoice("L1", 1)], {}, ["lines[1].line_id"]),
        (None, {"other_concession": Money(amount=5, currency="EUR")}, ["other_concession.currency"]),
        (None, {"return_shipping_concession": Money(amount=-5, currency="USD")}, ["return_shipping_concession.amount"]),
    ],
)
def test_bad_choices_name_the_field(choices, concessions, fields):
    order = make_order(lines=[("L1", 2, 1000)])
    ret = make_return(order, ("L1", 2, BUYER_REASON))
    with pytest.raises(RefundRuleBroken) as caught:
        return_refund(ret, carried(order, ret), lines=choices, **concessions)
    assert [p.field for p in caught.value.problems] == fields


@pytest.mark.parametrize(
    ("currency", "price", "shipping"), [("USD", 1999, 599), ("JPY", 1500, 500), ("BHD", 12345, 1250)]
)
def test_full_direct_refund_is_everything_paid(currency, price, shipping):
    order = make_order(currency=currency, lines=[("L1", 2, price), ("L2", 1, 100)], shipping=shipping)
    b = direct_refund(order)
    assert b.total == Money(amount=order.total_paid(), currency=currency)
    assert b.outbound_shipping.amount == shipping and b.restocking_fee.amount == 0


def test_partial_direct_refund():
    order = make_order(lines=[("L1", 3, 1500), ("L2", 1, 4999)], shipping=599)
    b = direct_refund(order, lines=[LineChoice("L1", 2)], other_concession=Money(amount=100, currency="USD"))
    assert (b.items.amount, b.outbound_shipping.amount, b.total.amount) == (3000, 0, 3100)
    assert direct_refund(order, lines=[], refund_shipping=True).total.amount == 599
    with pytest.raises(RefundRuleBroken) as caught:
        direct_refund(order, lines=[LineChoice("L2", 2)])
    assert caught.value.problems[0].field == "lines[0].quantity"


def _back(return_id: str, *units: tuple[str, int], seller: bool) -> CameBack:
    return CameBack(return_id, tuple(units), seller)


def test_the_return_that_brings_the_order_back_whole_carries_the_outbound_shipping_whichever_came_first():
    order = make_order(lines=[("L1", 2, 1000), ("L2", 1, 500)], shipping=599)
    defective = _back("r-a", ("L1", 2), seller=True)
    unwanted = _back("r-b", ("L2", 1), seller=False)
    # The seller was at fault for one of the order's returns: the last one to come back carries it.
    assert outbound_carrier(order, [defective, unwanted]) == "r-b"
    assert outbound_carrier(order, [unwanted, defective]) == "r-a"
    # Nobody at fault but the buyer: no outbound shipping.
    assert outbound_carrier(order, [unwanted, _back("r-a", ("L1", 2), seller=False)]) is None


def test_only_what_came_back_counts_towards_the_whole_order():
    order = make_order(lines=[("L1", 2, 1000)], shipping=599)
    # One unit back, the other return closed unshipped (never recorded): not the whole order.
    assert outbound_carrier(order, [_back("r-a", ("L1", 1), seller=True)]) is None
    # A missing unit is not back either, so a return of both units with one missing does not complete it.
    assert outbound_carrier(order, [_back("r-a", ("L1", 1), ("L1", 0), seller=True)]) is None
    # Units beyond the first return that completes it change nothing: the first one keeps the shipping.
    both = [
        _back("r-a", ("L1", 1), seller=True),
        _back("r-b", ("L1", 1), seller=True),
        _back("r-c", ("L1", 1), seller=True),
    ]
    assert outbound_carrier(order, both) == "r-b"


def test_a_return_of_every_unit_decides_the_shipping_by_itself():
    order = make_order(lines=[("L1", 2, 1000), ("L2", 1, 500)], shipping=599)
    assert whole_by_itself(order, _back("r-a", ("L1", 2), ("L2", 1), seller=False))
    assert not whole_by_itself(order, _back("r-a", ("L1", 2), seller=True))
    assert not whole_by_itself(order, _back("r-a", ("L1", 1), ("L1", 0), ("L2", 1), seller=True))  # one missing
