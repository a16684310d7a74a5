"""Money as integer minor units plus an ISO 4217 currency; percentages round half-up per amount."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from babel.numbers import format_currency, get_currency_precision
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class CurrencyMismatch(ValueError):
    pass


class Money(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: int = Field(description="Integer amount in the currency's minor unit (cents for USD, yen for JPY, fils for BHD).")
    currency: Currency

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=0, currency=currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def times(self, quantity: int) -> Money:
        return Money(amount=self.amount * quantity, currency=self.currency)

    def percent(self, percent: Decimal | int | str) -> Money:
        """`percent` % of this amount, rounded half-up to the minor unit."""
        return Money(amount=percent_of(self.amount, percent), currency=self.currency)


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
