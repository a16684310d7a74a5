"""Order snapshots and money are checked at the door: ISO 4217 currencies, one currency per order,
positive prices, plausible timezone-aware dates, and amounts that fit MongoDB's 64-bit integers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared.http.problems import field_path
from shared.models import Order
from shared.money import INT64_MAX, AmountOutOfRange, Money
from tests.unit.returns.builders import order_data

Change = Callable[[dict[str, Any]], None]


def fields_refused(data: dict[str, Any]) -> set[str]:
    """The fields the API would name (`lines[1].unit_price.currency`) for this snapshot."""
    with pytest.raises(ValidationError) as refused:
        Order.model_validate(data)
    return {field_path(error["loc"])[1] for error in refused.value.errors()}


def price(line: int, amount: int, currency: str = "USD") -> Change:
    def change(data: dict[str, Any]) -> None:
        data["lines"][line]["unit_price"] = {"amount": amount, "currency": currency}

    return change


def setting(field: str, value: Any) -> Change:
    return lambda data: data.__setitem__(field, value)


def quantity(line: int, value: int) -> Change:
    return lambda data: data["lines"][line].__setitem__("quantity", value)


def huge_lines(data: dict[str, Any]) -> None:  # each line fits, their sum does not
    for line in data["lines"]:
        line.update(quantity=1, unit_price={"amount": INT64_MAX // 2 + 1, "currency": "USD"})


def same_line_twice(data: dict[str, Any]) -> None:
    data["lines"][1]["line_id"] = data["lines"][0]["line_id"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (price(0, -2599), "lines[0].unit_price.amount"),
        (price(0, 0), "lines[0].unit_price.amount"),
        (price(1, 4999, "EUR"), "lines[1].unit_price.currency"),
        (setting("shipping_paid", {"amount": 599, "currency": "JPY"}), "shipping_paid.currency"),
        (setting("shipping_paid", {"amount": -1, "currency": "USD"}), "shipping_paid.amount"),
        (setting("currency", "ZZZ"), "currency"),
        (setting("currency", "usd"), "currency"),
        (setting("currency", "XTS"), "currency"),  # ISO's testing code: not money anyone pays with
        (setting("delivered_at", "2025-02-27T10:00:00+00:00"), "delivered_at"),  # before ordered_at
        (setting("ordered_at", "2025-02-28T20:00:00"), "ordered_at"),  # naive
        (setting("delivered_at", "2025-03-03T20:00:00"), "delivered_at"),  # naive
        (setting("ordered_at", "0001-01-01T00:00:00+00:00"), "ordered_at"),
        (setting("delivered_at", "9999-12-31T23:59:59+00:00"), "delivered_at"),
        (price(0, 2**63), "lines[0].unit_price.amount"),
        (quantity(0, 2**63), "lines[0].quantity"),
        (quantity(1, 2**62), "lines[1].quantity"),  # 2^62 lamps at 49.99: more than 2^63 cents
        (huge_lines, "lines"),
        (setting("shipping_paid", {"amount": 2**64, "currency": "USD"}), "shipping_paid.amount"),
        (same_line_twice, "lines[1].line_id"),
    ],
)
def test_an_implausible_snapshot_is_refused_naming_the_field(change: Change, field: str):
    data = order_data()
    change(data)
    assert field in fields_refused(data)


def test_a_plausible_snapshot_is_accepted_whatever_its_offset_or_currency():
    data = order_data(currency="JPY", shipping=0)
    data["ordered_at"] = "2025-03-01T09:00:00+09:00"
    data["delivered_at"] = "2025-03-01T00:00:00+00:00"  # the same instant as ordered_at
    order = Order.model_validate(data)
    assert order.total_paid() == 3 * 1500 + 4999
    assert order.delivered_at == order.ordered_at


def test_every_problem_of_a_snapshot_is_named_at_once():
    data = order_data()
    price(0, -1)(data)
    price(1, 10, "EUR")(data)
    setting("delivered_at", "2024-01-01T00:00:00+00:00")(data)
    assert fields_refused(data) == {"lines[0].unit_price.amount", "lines[1].unit_price.currency", "delivered_at"}


def test_money_fits_a_signed_64_bit_integer_and_a_currency_in_use():
    assert Money(amount=INT64_MAX, currency="BHD").amount == INT64_MAX
    assert Money(amount=-INT64_MAX - 1, currency="USD").amount == -(2**63)
    for amount, currency in ((2**63, "USD"), (-(2**63) - 1, "USD"), (1, "ZZZ"), (1, "XXX")):
        with pytest.raises(ValidationError):
            Money(amount=amount, currency=currency)


def test_money_arithmetic_beyond_64_bits_is_refused_not_wrapped():
    big = Money(amount=INT64_MAX, currency="USD")
    with pytest.raises(AmountOutOfRange):
        big + Money(amount=1, currency="USD")
    with pytest.raises(AmountOutOfRange):
        big.times(2)
    assert (big - big).amount == 0 and big.percent(50).amount == INT64_MAX // 2 + 1


def test_order_dates_far_from_now_but_plausible_are_fine():
    data = order_data(delivered_at=datetime(2099, 12, 30, tzinfo=UTC))
    assert Order.model_validate(data).delivered_at.year == 2099
