"""The marketplace's return rules and the seller's policy (docs/product.md §3–4): pure functions of data.

The one home of every rule the marketplace sets. The refunds service keeps no copy: it reads what
this module decided from the return (`lines[].fault`, `authorization.return_shipping_paid_by`,
`refund_due_at`, `receipt.lines[].restocking_fee_percent`).

- The numbers (windows, deadlines, restocking-fee cap, high-value cap, default postage): `MarketplaceRules`,
  one per marketplace, from the marketplaces file (services/returns/rulebook.py).
- Which reasons are the buyer's fault: `BUYER_FAULT_REASONS`, `fault_of`, `overall_fault`.
- Who pays return shipping: `seller_must_pay_shipping`, `return_shipping_payer`.
- When a restocking fee applies, and how much: `RESTOCKING_CONDITIONS`, `restocking_fee_percent`.
- What a seller's policy may change: `SellerPolicy`, `check_policy` (per marketplace, never below its minimum).
- Windows by fault (`window_days`: CN 7 days no-reason, 15 for quality), the statutory withdrawal
  (`is_withdrawal`: no restocking fee); eligibility and automatic decisions below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from services.returns.rulebook import DEFAULT_RULES as DEFAULT_RULES
from services.returns.rulebook import MarketplaceRules as MarketplaceRules
from shared.calendar import marketplace_country, marketplace_zone
from shared.models import (
    Fault,
    ItemCondition,
    Order,
    OrderLine,
    PolicySnapshot,
    ReasonCode,
    ReplacementTiming,
    ReturnLine,
)
from shared.money import Money
from shared.rules import FieldProblem, RulesBroken


class PolicyViolation(RulesBroken):
    """The return breaks the marketplace's or the seller's rules (a 422 naming each field)."""


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
    fault: Fault, condition: ItemCondition, policy: PolicySnapshot, rules: MarketplaceRules, *, withdrawal: bool = False
) -> Decimal:
    """The percent of the unit price the seller keeps on each unit received in this condition.

    The seller's percent (never above the marketplace's cap, even for a policy stored before the
    cap was lowered) when the buyer is at fault and the item came back opened, used or damaged by
    the buyer; otherwise none. Decided at receipt and carried on the return's receipt lines: the
    refunds service applies it as it is. A statutory withdrawal (GB, DE) bears none, whatever the policy.
    """
    if withdrawal or fault != Fault.BUYER or condition not in RESTOCKING_CONDITIONS:
        return Decimal(0)
    return min(Decimal(policy.restocking_fee_percent), rules.max_restocking_fee_percent)


# Also a MongoDB key: no dots or dollars.
Category = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]


class SellerPolicy(BaseModel):
    """What a seller chooses (`PUT /v1/sellers/{id}/return-policy`); checked by `check_policy`."""

    model_config = ConfigDict(extra="forbid")

    return_window_days: StrictInt | None = Field(
        default=None, ge=1, le=3650, description="Absent: the marketplace's window (`returns.window_days`)."
    )
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
    """The policy of a seller who set none in this marketplace: its own rules."""
    return SellerPolicy(return_window_days=rules.return_window_days)


def check_policy(policy: SellerPolicy, rules: MarketplaceRules) -> list[FieldProblem]:
    """A seller policy may extend the marketplace's rules, never weaken them."""
    problems = []
    minimum = rules.minimum_window_days
    too_short = f"must be at least the marketplace's {minimum} days ({rules.code})"
    if policy.return_window_days is not None and policy.return_window_days < minimum:
        problems.append(FieldProblem("return_window_days", too_short))
    for category, days in policy.category_window_days.items():
        if days < minimum:
            problems.append(FieldProblem(f"category_window_days.{category}", too_short))
        if category in rules.non_returnable_categories:
            problems.append(FieldProblem(f"category_window_days.{category}", "this category is not returnable"))
    if policy.restocking_fee_percent > rules.max_restocking_fee_percent:
        problems.append(FieldProblem("restocking_fee_percent", f"must be at most {rules.max_restocking_fee_percent} %"))
    if policy.returnless_threshold is not None and policy.returnless_threshold.amount < 0:
        problems.append(FieldProblem("returnless_threshold.amount", "must not be negative"))
    return problems


# ---- eligibility ----------------------------------------------------------------------------


def window_days(policy: SellerPolicy, category: str, rules: MarketplaceRules, seller_fault: bool = False) -> int:
    """The marketplace's window for the fault, or the seller's (category) window when longer: a seller's
    windows count for every reason, so a quality problem never has less time than a change of mind."""
    sellers = max(policy.return_window_days or 0, policy.category_window_days.get(category, 0))
    return max(rules.window_for(seller_fault), sellers)


def days_since_delivery(delivered_at: datetime, now: datetime, marketplace: str) -> int:
    """Whole local days: delivered on day D (marketplace time), `now` on D+n -> n."""
    zone = marketplace_zone(marketplace)
    return (now.astimezone(zone).date() - delivered_at.astimezone(zone).date()).days


def in_window(
    order: Order,
    line: OrderLine,
    policy: SellerPolicy,
    rules: MarketplaceRules,
    now: datetime,
    seller_fault: bool = False,
) -> bool:
    days = days_since_delivery(order.delivered_at, now, order.marketplace)
    return 0 <= days <= window_days(policy, line.category, rules, seller_fault)


def is_withdrawal(
    lines: Iterable[ReturnLine], delivered_at: datetime, now: datetime, marketplace: str, rules: MarketplaceRules
) -> bool:
    """Asked within the statutory withdrawal period (GB, DE: 14 local days) with a buyer-fault line.
    Each such line is withdrawn and bears no restocking fee, whatever the other lines' reasons (a
    seller-fault line bears none anyway): a defective item beside it must not cost the buyer the right."""
    days = days_since_delivery(delivered_at, now, marketplace)
    within = rules.withdrawal_days > 0 and 0 <= days <= rules.withdrawal_days
    return within and any(line.fault == Fault.BUYER for line in lines)


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
    """An item (one unit) priced above the cap always needs the seller's own decision; so does one in
    a currency the marketplace sets no cap for (an order in a foreign currency): its value is unknown
    to the rules, and an automatic authorization cannot be taken back."""
    cap = rules.high_value_cap.get(line.unit_price.currency)
    return cap is None or line.unit_price.amount > cap


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
