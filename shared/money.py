"""Money as integer minor units plus an ISO 4217 currency; percentages round half-up per amount.

Every amount fits a signed 64-bit integer (what MongoDB stores); arithmetic that would leave that
range raises AmountOutOfRange instead of producing a number no store or gateway can take.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from babel import Locale
from babel.numbers import format_currency, get_currency_precision, get_territory_currencies
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# ISO 4217 codes of the currencies that are legal tender somewhere today, from CLDR (babel): no
# withdrawn currencies, funds codes, precious metals or the test codes XTS and XXX.
CURRENCIES_IN_USE = frozenset(
    code
    for territory in Locale("en").territories
    if isinstance(territory, str)  # territory codes; babel types the keys more loosely
    for code in get_territory_currencies(territory, tender=True)
)


def _in_use(code: str) -> str:
    if code not in CURRENCIES_IN_USE:
        raise ValueError(f"{code} is not an ISO 4217 currency in use")
    return code


def int64(value: int) -> int:
    """A whole number MongoDB stores as a 64-bit integer (and a gateway can take)."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("must fit a signed 64-bit integer")
    return value


Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_in_use)]
# Bounds as OpenAPI says them (`format: int64`): exact, where a `maximum` would print as a float.
Amount = Annotated[int, AfterValidator(int64), Field(json_schema_extra={"format": "int64"})]


class CurrencyMismatch(ValueError):
    pass


class AmountOutOfRange(ValueError):
    """A sum or product of amounts does not fit a signed 64-bit integer."""


class Money(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Amount = Field(
        description="Integer amount in the currency's minor unit (cents for USD, yen for "
        "JPY, fils for BHD); a signed 64-bit integer."
    )
    currency: Currency

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=0, currency=currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} vs {other.currency}")

    def _with(self, amount: int) -> Money:
        if not INT64_MIN <= amount <= INT64_MAX:
            raise AmountOutOfRange(f"{amount} {self.currency} does not fit a signed 64-bit integer")
        # Both parts are valid already (this currency, an amount just checked): no validation pass,
        # which was most of the cost of a sum (refund arithmetic runs per line and per fee).
        return Money.model_construct(amount=amount, currency=self.currency)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return self._with(self.amount + other.amount)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return self._with(self.amount - other.amount)

    def times(self, quantity: int) -> Money:
        return self._with(self.amount * quantity)

    def percent(self, percent: Decimal | int | str) -> Money:
        """`percent` % of this amount, rounded half-up to the minor unit."""
        return self._with(percent_of(self.amount, percent))


def percent_of(amount: int, percent: Decimal | int | str) -> int:
    exact = Decimal(amount) * Decimal(str(percent)) / Decimal(100)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def minor_digits(currency: str) -> int:
    """Decimal places of the currency's minor unit: 2 for USD, 0 for JPY, 3 for BHD."""
    return get_currency_precision(currency)


def to_major(money: Money) -> Decimal:
    return Decimal(money.amount).scaleb(-minor_digits(money.currency))


def format_money(money: Money, locale: str = "en") -> str:
    """Human form for emails: `$19.99`, `¥1,500`, `BHD 1.250` in the reader's locale."""
    return format_currency(to_major(money), money.currency, locale=locale.replace("-", "_"))
