"""The order snapshot the returns service keeps and validates returns against (`order.delivered`,
`PUT /v1/orders/{id}`), with the checks that refuse an implausible one. Imported through
shared.models, where every contract shape is."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from shared import marketplaces
from shared.contract_base import EARLIEST_ORDER, LATEST_ORDER, Contract, CountryCode, Id, Party, Quantity
from shared.money import INT64_MAX, Currency, Money
from shared.resolution_models import Variant

# Validation context of a service reading back a document it stored: `Order.model_validate(doc,
# context=STORED)`. An order is refused for an unserved marketplace only where it enters (an HTTP
# body, an `order.delivered` event, which validate without context); a stored one of a marketplace
# removed from the file since still reads, and what needs its rules answers UnknownMarketplace.
STORED = {"stored": True}


class Address(Contract):
    name: str | None = None
    line1: str
    line2: str | None = None
    city: str
    region: str | None = None
    postal_code: str
    country: CountryCode


class Seller(Party):
    return_address: Address


class OrderLine(Contract):
    line_id: Id
    sku: Id
    title: str
    category: str
    quantity: Quantity
    unit_price: Money = Field(description="Positive, in the order's currency.")
    variants: list[Variant] = Field(
        default_factory=list,
        description="Other SKUs of the same listing (colour, size) a replacement may be, each at its unit price.",
    )
    return_shipping_insurance: bool = Field(
        default=False,
        description=(
            "Bought with return-shipping insurance (marketplaces that offer it, CN): the buyer's postage for "
            "returning it is refunded by the insurer, never charged to the seller."
        ),
    )


class Payment(Contract):
    provider: str = Field(description="Gateway that took the payment: `stripe` or `ledger`.")
    reference: str = Field(description="The gateway's payment reference (a Stripe PaymentIntent or charge id).")


class Order(Contract):
    """Snapshot of a delivered order: `order.delivered` data and the body of `PUT /v1/orders/{id}`."""

    order_id: Id
    marketplace: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(
        description="A marketplace this deployment serves (`GET /v1/marketplaces/{code}`); others are refused."
    )
    currency: Currency
    buyer: Party
    seller: Seller
    lines: list[OrderLine] = Field(min_length=1, description="Line ids are unique; all prices in `currency`.")
    shipping_paid: Money = Field(description="Zero or more, in the order's currency.")
    ordered_at: AwareDatetime = Field(description="With a UTC offset; between 2000 and 2100.")
    delivered_at: AwareDatetime = Field(description="With a UTC offset; not before `ordered_at`.")
    payment: Payment

    @model_validator(mode="after")
    def _plausible(self, info: ValidationInfo) -> Order:
        problems = order_problems(self)
        served = marketplaces.current()
        if self.marketplace in served:  # a party whose snapshot names no locale reads the marketplace's language
            for party in (self.buyer, self.seller):
                if "locale" not in party.model_fields_set:
                    party.locale = served[self.marketplace].default_locale.value
        elif not (info.context or {}).get("stored"):  # refused where it comes in, not when read back (STORED)
            problems.append(
                (("marketplace",), f"unknown marketplace; this deployment serves {', '.join(served)}", self.marketplace)
            )
        if problems:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(type=PydanticCustomError("implausible_order", reason), loc=loc, input=value)
                    for loc, reason, value in problems
                ],
            )
        return self

    def line(self, line_id: str) -> OrderLine | None:
        return next((line for line in self.lines if line.line_id == line_id), None)

    def total_paid(self) -> int:
        return sum(line.unit_price.amount * line.quantity for line in self.lines) + self.shipping_paid.amount


Problem = tuple[tuple[str | int, ...], str, Any]


def order_problems(order: Order) -> list[Problem]:
    """What makes a snapshot implausible, as (field path, reason, value): one currency, positive
    prices, totals that fit 64 bits, unique lines, dates in order and within this century."""
    problems: list[Problem] = []
    seen: set[str] = set()
    total = 0
    for index, line in enumerate(order.lines):
        price = line.unit_price
        if line.line_id in seen:
            problems.append((("lines", index, "line_id"), "listed twice", line.line_id))
        seen.add(line.line_id)
        if price.currency != order.currency:
            problems.append(
                (
                    ("lines", index, "unit_price", "currency"),
                    f"must be the order's currency {order.currency}",
                    price.currency,
                )
            )
        if price.amount <= 0:
            problems.append((("lines", index, "unit_price", "amount"), "must be positive", price.amount))
        elif price.amount * line.quantity > INT64_MAX:
            problems.append(
                (("lines", index, "quantity"), "quantity × unit price exceeds a 64-bit amount", line.quantity)
            )
        total += max(price.amount, 0) * line.quantity
    if total > INT64_MAX and not any(loc[-1] == "quantity" for loc, _, _ in problems):
        problems.append((("lines",), "the lines together exceed a 64-bit amount", None))
    shipping = order.shipping_paid
    if shipping.currency != order.currency:
        problems.append(
            (("shipping_paid", "currency"), f"must be the order's currency {order.currency}", shipping.currency)
        )
    if shipping.amount < 0:
        problems.append((("shipping_paid", "amount"), "must not be negative", shipping.amount))
    elif total <= INT64_MAX < total + shipping.amount:
        problems.append((("shipping_paid", "amount"), "the order's total exceeds a 64-bit amount", shipping.amount))
    for name in ("ordered_at", "delivered_at"):
        at = getattr(order, name)
        if not EARLIEST_ORDER <= at < LATEST_ORDER:
            problems.append(((name,), f"must be between {EARLIEST_ORDER.year} and {LATEST_ORDER.year}", at.isoformat()))
    if order.delivered_at < order.ordered_at:
        problems.append((("delivered_at",), "must not be before ordered_at", order.delivered_at.isoformat()))
    return problems
