"""The marketplace's return rules and the seller's policy (docs/product.md §3–4): pure functions of data.

The one home of every rule the marketplace sets. The refunds service keeps no copy: it reads what
this module decided from the return (`lines[].fault`, `authorization.return_shipping_paid_by`,
`refund_due_at`, `receipt.lines[].restocking_fee_percent`).

- The numbers (window, deadlines, restocking-fee cap, high-value cap, default postage): `MarketplaceRules`;
  the defaults are here, a deployment may change them (services/returns/settings.py).
- Which reasons are the buyer's fault: `BUYER_FAULT_REASONS`, `fault_of`, `overall_fault`.
- Who pays return shipping: `seller_must_pay_shipping`, `return_shipping_payer`.
- When a restocking fee applies, and how much: `RESTOCKING_CONDITIONS`, `restocking_fee_percent`.
- What a seller's policy may change: `SellerPolicy`, `check_policy`; eligibility and automatic decisions below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from shared.calendar import add_business_days, marketplace_country, marketplace_zone
from shared.models import (
    Fault,
    ItemCondition,
    Order,
    OrderLine,
    PolicySnapshot,
    ReasonCode,
    ReplacementTiming,
    ReturnLine,
    same_named,
)
from shared.money import Money
from shared.rules import FieldProblem, RulesBroken

if TYPE_CHECKING:  # settings.py imports this module for its defaults
    from services.returns.settings import Settings


class PolicyViolation(RulesBroken):
    """The return breaks the marketplace's or the seller's rules (a 422 naming each field)."""


# ---- the marketplace's numbers --------------------------------------------------------------


@dataclass(frozen=True)
class MarketplaceRules:
    """What the marketplace sets; a seller's policy may be more generous, never weaker."""

    return_window_days: int = 30
    response_deadline: timedelta = timedelta(hours=48)
    reminder_lead: timedelta = timedelta(hours=12)
    authorization_validity: timedelta = timedelta(days=30)
    refund_business_days: int = 2
    max_restocking_fee_percent: Decimal = Decimal(50)
    offer_validity: timedelta = timedelta(hours=72)  # a keep-it offer the buyer leaves unanswered expires
    non_returnable_categories: frozenset[str] = frozenset(
        {"digital_content", "gift_cards", "perishable_food", "personalized", "hazardous_materials"}
    )
    # Per currency, in minor units.
    high_value_cap: Mapping[str, int] = field(
        default_factory=lambda: {
            "USD": 75000,
            "EUR": 70000,
            "GBP": 60000,
            "CAD": 100000,
            "AUD": 110000,
            "JPY": 110000,
            "CNY": 500000,
            "BHD": 280000,
        }
    )
    default_return_postage: Mapping[str, int] = field(
        default_factory=lambda: {
            "USD": 899,
            "EUR": 699,
            "GBP": 599,
            "CAD": 1199,
            "AUD": 1295,
            "JPY": 1000,
            "CNY": 3000,
            "BHD": 3000,
        }
    )
    # Resolutions besides a refund (docs/product.md §12): whether buyers may ask for them at all.
    replacements_allowed: bool = True
    store_credit_allowed: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> MarketplaceRules:
        """The rules the settings name: every rule is a setting of the same name."""
        rules = same_named(settings, (rule.name for rule in fields(cls)))
        rules.update(
            non_returnable_categories=frozenset(settings.non_returnable_categories),
            high_value_cap=dict(settings.high_value_cap),
            default_return_postage=dict(settings.default_return_postage),
        )
        return cls(**rules)

    def response_due(self, requested_at: datetime) -> datetime:
        """The seller answers by then, or the platform authorizes (`response_due_at`)."""
        return requested_at + self.response_deadline

    def ship_by(self, authorized_at: datetime) -> datetime:
        """The buyer ships by then, or the authorization expires."""
        return authorized_at + self.authorization_validity

    def refund_due(self, received_at: datetime, marketplace: str) -> datetime:
        """The refund deadline (`refund_due_at`): business days of the marketplace's calendar after receipt."""
        return add_business_days(received_at, self.refund_business_days, marketplace)

    def postage(self, currency: str) -> Money | None:
        amount = self.default_return_postage.get(currency)
        return None if amount is None else Money(amount=amount, currency=currency)


# The marketplace's rules as shipped: the defaults of the settings and of a seller's policy.
DEFAULT_RULES = MarketplaceRules()


# ---- fault, return shipping, restocking fee -------------------------------------------------

BUYER_FAULT_REASONS = frozenset(
    {
        ReasonCode.NO_LONGER_NEEDED,
        ReasonCode.ORDERED_BY_MISTAKE,
        ReasonCode.BETTER_PRICE_FOUND,
        ReasonCode.DONT_KNOW_HOW_TO_USE,
    }
)


def fault_of(reason: ReasonCode) -> Fault:
    """Whose fault a return reason is; every reason not the buyer's is the seller's."""
    return Fault.BUYER if reason in BUYER_FAULT_REASONS else Fault.SELLER


def overall_fault(lines: Iterable[ReturnLine]) -> Fault:
    """The seller is at fault for the return as soon as one line's reason is theirs."""
    return Fault.SELLER if any(line.fault == Fault.SELLER for line in lines) else Fault.BUYER


def seller_must_pay_shipping(fault: Fault, return_country: str, marketplace: str) -> bool:
    """The seller's fault, or a return address outside the marketplace's country."""
    return fault == Fault.SELLER or return_country != marketplace_country(marketplace)


def return_shipping_payer(fault: Fault, return_country: str, marketplace: str, seller_pays_by_choice: bool) -> Fault:
    if seller_must_pay_shipping(fault, return_country, marketplace) or seller_pays_by_choice:
        return Fault.SELLER
    return Fault.BUYER


# Only these conditions, when the buyer is at fault, let the seller keep a restocking fee.
RESTOCKING_CONDITIONS = frozenset({ItemCondition.OPENED, ItemCondition.USED, ItemCondition.DAMAGED_BY_BUYER})


def restocking_fee_percent(
    fault: Fault, condition: ItemCondition, policy: PolicySnapshot, rules: MarketplaceRules
) -> Decimal:
    """The percent of the unit price the seller keeps on each unit received in this condition.

    The seller's percent (never above the marketplace's cap, even for a policy stored before the
    cap was lowered) when the buyer is at fault and the item came back opened, used or damaged by
    the buyer; otherwise none. Decided at receipt and carried on the return's receipt lines: the
    refunds service applies it as it is.
    """
    if fault != Fault.BUYER or condition not in RESTOCKING_CONDITIONS:
        return Decimal(0)
    return min(Decimal(policy.restocking_fee_percent), rules.max_restocking_fee_percent)


# Also a MongoDB key: no dots or dollars.
Category = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]


class SellerPolicy(BaseModel):
    """What a seller chooses (`PUT /v1/sellers/{id}/return-policy`); checked by `check_policy`."""

    model_config = ConfigDict(extra="forbid")

    return_window_days: StrictInt = Field(default=DEFAULT_RULES.return_window_days, ge=1, le=3650)
    category_window_days: dict[Category, StrictInt] = Field(
        default_factory=dict, description="Longer windows for some categories."
    )
    restocking_fee_percent: Decimal = Field(default=Decimal(0), ge=0, le=100, max_digits=5, decimal_places=2)
    refund_mode: Literal["auto", "manual"] = "auto"
    auto_authorize: StrictBool = False
    returnless_threshold: Money | None = None
    seller_pays_return_shipping: StrictBool = False
    offers_replacements: StrictBool = Field(
        default=False, description="Buyers may ask for a replacement instead of a refund."
    )
    replacement_ships: ReplacementTiming = Field(
        default=ReplacementTiming.AT_RECEIPT,
        description="`at_authorization`: the replacement ships once authorized (seller-fault returns only).",
    )

    def snapshot(self) -> PolicySnapshot:
        return PolicySnapshot(
            refund_mode=self.refund_mode,
            restocking_fee_percent=self.restocking_fee_percent,
            seller_pays_return_shipping=self.seller_pays_return_shipping,
            returnless_threshold=self.returnless_threshold,
            auto_authorize=self.auto_authorize,
            offers_replacements=self.offers_replacements,
            replacement_ships=self.replacement_ships,
        )


def default_policy(rules: MarketplaceRules) -> SellerPolicy:
    """The policy of a seller who set none: the marketplace minimums."""
    return SellerPolicy(return_window_days=rules.return_window_days)


def check_policy(policy: SellerPolicy, rules: MarketplaceRules) -> list[FieldProblem]:
    """A seller policy may extend the marketplace's rules, never weaken them."""
    problems = []
    minimum = rules.return_window_days
    if policy.return_window_days < minimum:
        problems.append(FieldProblem("return_window_days", f"must be at least the marketplace's {minimum} days"))
    for category, days in policy.category_window_days.items():
        if days < minimum:
            problems.append(
                FieldProblem(f"category_window_days.{category}", f"must be at least the marketplace's {minimum} days")
            )
        if category in rules.non_returnable_categories:
            problems.append(FieldProblem(f"category_window_days.{category}", "this category is not returnable"))
    if policy.restocking_fee_percent > rules.max_restocking_fee_percent:
        problems.append(FieldProblem("restocking_fee_percent", f"must be at most {rules.max_restocking_fee_percent} %"))
    if policy.returnless_threshold is not None and policy.returnless_threshold.amount < 0:
        problems.append(FieldProblem("returnless_threshold.amount", "must not be negative"))
    return problems


# ---- eligibility ----------------------------------------------------------------------------


def window_days(policy: SellerPolicy, category: str, rules: MarketplaceRules) -> int:
    return max(rules.return_window_days, policy.return_window_days, policy.category_window_days.get(category, 0))


def days_since_delivery(delivered_at: datetime, now: datetime, marketplace: str) -> int:
    """Whole local days: delivered on day D (marketplace time), `now` on D+n -> n."""
    zone = marketplace_zone(marketplace)
    return (now.astimezone(zone).date() - delivered_at.astimezone(zone).date()).days


def in_window(order: Order, line: OrderLine, policy: SellerPolicy, rules: MarketplaceRules, now: datetime) -> bool:
    days = days_since_delivery(order.delivered_at, now, order.marketplace)
    return 0 <= days <= window_days(policy, line.category, rules)


def returnable_quantity(line: OrderLine, already_returned: Mapping[str, int]) -> int:
    return line.quantity - already_returned.get(line.line_id, 0)


def is_whole_order(order: Order, lines: Iterable[ReturnLine], already_returned: Mapping[str, int]) -> bool:
    """True when this return, with the earlier live ones, brings back every unit delivered."""
    now_returned = dict(already_returned)
    for line in lines:
        now_returned[line.line_id] = now_returned.get(line.line_id, 0) + line.quantity
    return all(now_returned.get(line.line_id, 0) >= line.quantity for line in order.lines)


# ---- automatic decisions --------------------------------------------------------------------


def is_high_value(line: ReturnLine, rules: MarketplaceRules) -> bool:
    """An item (one unit) priced above the cap always needs the seller's own decision."""
    cap = rules.high_value_cap.get(line.unit_price.currency)
    return cap is not None and line.unit_price.amount > cap


def may_auto_authorize(
    lines: list[ReturnLine], policy: PolicySnapshot, *, in_policy: bool, buyer_flagged: bool, rules: MarketplaceRules
) -> bool:
    return (
        policy.auto_authorize
        and in_policy
        and not buyer_flagged
        and not any(is_high_value(line, rules) for line in lines)
    )


def qualifies_for_returnless(
    lines: list[ReturnLine], policy: PolicySnapshot, *, in_policy: bool, buyer_flagged: bool
) -> bool:
    """Every returned line's value (unit price × quantity) at or under the seller's threshold."""
    threshold = policy.returnless_threshold
    if threshold is None or not in_policy or buyer_flagged or not lines:
        return False
    return all(
        line.unit_price.currency == threshold.currency and line.unit_price.amount * line.quantity <= threshold.amount
        for line in lines
    )


def invalid_rejection(in_policy: bool, fault: Fault) -> bool:
    """Rejecting an in-policy request the seller is at fault for counts against the seller."""
    return in_policy and fault == Fault.SELLER
