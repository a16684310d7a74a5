"""The claim and chargeback rules of each marketplace (its `claims` block), with the deployment's overrides.

A claim follows the rules of its order's marketplace (design rule 7): the window, the seller's
response time and the reminder before it. A chargeback gives the seller the evidence days of its
order's marketplace, or of the deployment's default marketplace when no order is known. The
settings CLAIM_OPENS_AFTER_DAYS, CLAIM_WINDOW_DAYS, CLAIM_RESPONSE_HOURS, CLAIM_REMINDER_HOURS and
CHARGEBACK_EVIDENCE_DAYS, when set, replace the rule in every marketplace (drills and tests).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.disputes.eligibility import ClaimRules
from services.disputes.settings import Settings
from shared import marketplaces
from shared.marketplaces import Marketplaces

# Setting -> the field of a marketplace's `claims` block it overrides (same units).
OVERRIDES = {
    "claim_opens_after_days": "opens_after_days",
    "claim_window_days": "window_days",
    "claim_response_hours": "response_hours",
    "claim_reminder_hours": "reminder_hours",
    "chargeback_evidence_days": "chargeback_evidence_days",
}


class DisputeRules:
    """The served marketplaces' claim rules, looked up by marketplace code."""

    def __init__(self, served: Marketplaces, default_marketplace: str) -> None:
        self.served = served
        self.default = served.require(default_marketplace, "default_marketplace")

    @classmethod
    def from_settings(cls, settings: Settings, served: Marketplaces | None = None) -> DisputeRules:
        """The installed marketplaces (or `served`) with the settings that are set laid over every one.
        An override that breaks a marketplace's rules stops the service (MarketplaceConfigError)."""
        served = marketplaces.current() if served is None else served
        claims = {field: getattr(settings, name) for name, field in OVERRIDES.items()}
        overrides = {field: value for field, value in claims.items() if value is not None}
        return cls(served.overridden(claims=overrides), settings.default_marketplace)

    def claims(self, marketplace: str) -> ClaimRules:
        """The claim rules of an order's marketplace (UnknownMarketplace when not served)."""
        return ClaimRules.of(self.served.require(marketplace).claims)

    def evidence_days(self, marketplace: str | None) -> float:
        """The seller's time to send chargeback evidence; no known order (or a marketplace no longer
        served): the default marketplace's."""
        profile = self.served.get(marketplace) if marketplace else None
        return (profile or self.default).claims.chargeback_evidence_days

    def reminder_sweeps(self) -> list[tuple[timedelta, dict[str, Any] | None]]:
        """What the reminder job asks the store for: per distinct reminder lead, the marketplaces
        it covers as a filter on `marketplace` (None: every claim, when all marketplaces agree).
        Claims of a marketplace no longer served are reminded with the default marketplace's lead."""
        codes_by_lead: dict[timedelta, list[str]] = {}
        for code, profile in self.served.items():
            codes_by_lead.setdefault(timedelta(hours=profile.claims.reminder_hours), []).append(code)
        if len(codes_by_lead) == 1:
            return [(lead, None) for lead in codes_by_lead]
        default_lead = timedelta(hours=self.default.claims.reminder_hours)
        sweeps: list[tuple[timedelta, dict[str, Any] | None]] = []
        for lead, codes in sorted(codes_by_lead.items()):
            if lead == default_lead:
                others = sorted(code for code in self.served if code not in codes)
                sweeps.append((lead, {"$nin": others}))
            else:
                sweeps.append((lead, {"$in": codes}))
        return sweeps
