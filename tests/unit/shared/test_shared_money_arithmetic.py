"""Money arithmetic builds its results without a validation pass: they must be the same values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.money import INT64_MAX, AmountOutOfRange, Money


def test_results_equal_validated_money_and_serialise_alike() -> None:
    price = Money(amount=1999, currency="JPY")
    results = [price + price, price - Money(amount=999, currency="JPY"), price.times(3), price.percent("12.5")]
    expected = [3998, 1000, 5997, 250]
    for result, amount in zip(results, expected, strict=True):
        validated = Money(amount=amount, currency="JPY")
        assert result == validated
        assert hash(result) == hash(validated)
        assert result.model_dump_json() == validated.model_dump_json()
        with pytest.raises(ValidationError):  # still frozen
            result.amount = 1  # type: ignore[misc]


def test_results_outside_int64_still_raise() -> None:
    with pytest.raises(AmountOutOfRange):
        Money(amount=INT64_MAX, currency="USD") + Money(amount=1, currency="USD")
