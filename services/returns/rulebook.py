"""The return rules of each marketplace the deployment serves, as the returns service applies them.

Every rule comes from the profile of the order's (or the return's) marketplace (shared/marketplaces.py,
docs/product.md §13): `RuleBook.rules_for(code)`. The returns service's old rule settings
(RETURN_WINDOW_DAYS, RESPONSE_DEADLINE, ...) are deployment-wide overrides, mainly for drills and
tests: unset by default; when set, they replace that rule in every marketplace (`overrides`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from services.returns.settings import Settings
from shared import marketplaces
from shared.calendar import add_business_days
from shared.marketplace_models import Marketplace
from shared.money import Money

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class MarketplaceRules:
    """One marketplace's return rules; a seller's policy may be more generous, never weaker.

    The defaults are the US profile (the rules of the platform before it served several marketplaces):
    tests build variants with `dataclasses.replace`."""

    code: str = "US"
    return_window_days: int = 30  # buyer-fault ("no-reason") window, and a seller's default
    quality_window_days: int | None = None  # seller-fault window; None: return_window_days
    minimum_window_days: int = 30  # the shortest window a seller's policy may set
    withdrawal_days: int = 0  # statutory right of withdrawal (GB, DE): no restocking fee within it
    response_deadline: timedelta = timedelta(hours=48)
    reminder_lead: timedelta = timedelta(hours=12)
    authorization_validity: timedelta = timedelta(days=30)
    refund_business_days: int = 2
    max_restocking_fee_percent: Decimal = Decimal(50)
    offer_validity: timedelta = timedelta(hours=72)  # a keep-it offer the buyer leaves unanswered expires
    non_returnable_categories: frozenset[str] = frozenset(
        {"digital_content", "gift_cards", "perishable_food", "personalized", "hazardous_materials"}
    )
    no_reason_excluded_categories: frozenset[str] = frozenset()  # returnable for seller-fault reasons only
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
    return_shipping_insurance: bool = False  # order lines may carry return-shipping insurance (CN)
    # Resolutions besides a refund (docs/product.md §12): whether buyers may ask for them at all.
    replacements_allowed: bool = True
    store_credit_allowed: bool = True

    @classmethod
    def of(cls, profile: Marketplace) -> MarketplaceRules:
        """The rules of one marketplace profile."""
        returns, resolutions = profile.returns, profile.resolutions
        return cls(
            code=profile.code,
            return_window_days=returns.window_days,
            quality_window_days=returns.quality_window_days,
            minimum_window_days=returns.minimum_window_days,
            withdrawal_days=returns.withdrawal_days,
            response_deadline=returns.response_deadline_hours * HOUR,
            reminder_lead=returns.reminder_lead_hours * HOUR,
            authorization_validity=returns.authorization_validity_days * DAY,
            refund_business_days=returns.refund_business_days,
            max_restocking_fee_percent=returns.max_restocking_fee_percent,
            offer_validity=resolutions.offer_validity_hours * HOUR,
            non_returnable_categories=frozenset(returns.non_returnable_categories),
            no_reason_excluded_categories=frozenset(returns.no_reason_excluded_categories),
            high_value_cap=dict(returns.high_value_cap),
            default_return_postage=dict(returns.default_return_postage),
            return_shipping_insurance=returns.return_shipping_insurance,
            replacements_allowed=resolutions.replacements_allowed,
            store_credit_allowed=resolutions.store_credit_allowed,
        )

    def window_for(self, seller_fault: bool) -> int:
        """The marketplace's own window for a reason of this fault (CN: 7 days no-reason, 15 for quality)."""
        return (self.quality_window_days or self.return_window_days) if seller_fault else self.return_window_days

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


# The US profile as shipped: what the unit tests and a seller's defaults start from.
DEFAULT_RULES = MarketplaceRules()


def _hours(value: timedelta) -> float:
    return value / HOUR


def overrides(settings: Settings) -> dict[str, dict[str, Any]]:
    """The rule settings that are set, as profile fields of every marketplace (`Marketplaces.overridden`).

    RETURN_WINDOW_DAYS is the window of every marketplace and the shortest a seller may set (as it
    was before marketplaces); a statutory withdrawal period or quality window shorter than it
    shrinks or falls back to it so the profile stays consistent."""
    returns: dict[str, Any] = {}
    if settings.response_deadline is not None:
        returns["response_deadline_hours"] = _hours(settings.response_deadline)
    if settings.reminder_lead is not None:
        returns["reminder_lead_hours"] = _hours(settings.reminder_lead)
    if settings.authorization_validity is not None:
        returns["authorization_validity_days"] = settings.authorization_validity / DAY
    for name in ("refund_business_days", "max_restocking_fee_percent", "high_value_cap", "default_return_postage"):
        if (value := getattr(settings, name)) is not None:
            returns[name] = value
    if settings.non_returnable_categories is not None:
        returns["non_returnable_categories"] = frozenset(settings.non_returnable_categories)
    resolutions: dict[str, Any] = {}
    if settings.offer_validity is not None:
        resolutions["offer_validity_hours"] = _hours(settings.offer_validity)
    for name in ("replacements_allowed", "store_credit_allowed"):
        if (value := getattr(settings, name)) is not None:
            resolutions[name] = value
    return {"returns": returns, "resolutions": resolutions}


def _with_window(served: marketplaces.Marketplaces, days: int) -> marketplaces.Marketplaces:
    """RETURN_WINDOW_DAYS applied to each profile (it moves fields that depend on one another)."""
    changed = {}
    for code, profile in served.items():
        rules = profile.returns
        window = {
            "window_days": days,
            "minimum_window_days": days,
            "withdrawal_days": min(rules.withdrawal_days, days),
            "quality_window_days": rules.quality_window_days if (rules.quality_window_days or 0) > days else None,
        }
        changed[code] = marketplaces.Marketplaces({code: profile}).overridden(returns=window)[code]
    return marketplaces.Marketplaces(changed)


class RuleBook:
    """Marketplace code -> its return rules, built once at start-up from the installed marketplaces."""

    def __init__(self, served: marketplaces.Marketplaces, default_marketplace: str = "US") -> None:
        self.marketplaces = served
        self.default_marketplace = default_marketplace
        self._rules = {code: MarketplaceRules.of(profile) for code, profile in served.items()}

    @classmethod
    def from_settings(cls, settings: Settings, served: marketplaces.Marketplaces | None = None) -> RuleBook:
        """The installed marketplaces (`served`, default `current()`) with the settings' overrides on top."""
        served = (served or marketplaces.current()).overridden(**overrides(settings))
        if settings.return_window_days is not None:
            served = _with_window(served, settings.return_window_days)
        return cls(served, settings.default_marketplace)

    def rules_for(self, code: str, field: str = "marketplace") -> MarketplaceRules:
        """The rules of marketplace `code`; UnknownMarketplace (a 422 naming `field`) when not served."""
        rules = self._rules.get(code)
        if rules is None:
            self.marketplaces.require(code, field)  # raises, naming the codes served
        return self._rules[code]

    def reminder_leads(self) -> dict[timedelta, frozenset[str]]:
        """Each distinct reminder lead and the marketplaces that have it (the deadline job's queries)."""
        leads: dict[timedelta, set[str]] = {}
        for code, rules in self._rules.items():
            leads.setdefault(rules.reminder_lead, set()).add(code)
        return {lead: frozenset(codes) for lead, codes in sorted(leads.items())}
