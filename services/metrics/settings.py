"""Settings of the metrics service: where it listens, abuse thresholds, targets, the order defect rate's
window and rules, and job periods."""

from __future__ import annotations

from pydantic import Field

from services.metrics.defects import ClaimsCounted, ClaimsCountedRule
from shared import marketplaces
from shared.settings import CommonSettings


class Settings(CommonSettings):
    service_name: str = "metrics"
    port: int = 8004

    abuse_window_days: int = Field(default=90, gt=0, description="Look-back window of the buyer abuse rules.")
    abuse_max_returns: int = Field(default=5, gt=0, description="Returns in the window at which a buyer is flagged.")
    abuse_max_return_rate: float = Field(
        default=0.5, gt=0, le=1, description="Return rate at which a buyer is flagged..."
    )
    abuse_min_orders: int = Field(
        default=4, gt=0, description="...once they have at least this many orders in the window."
    )
    dissatisfaction_target: float = Field(
        default=0.10, gt=0, le=1, description="Marketplace target: return dissatisfaction rate below this."
    )
    odr_window_days: int = Field(
        default=60, gt=0, description="Order defect rate and seller rating: the orders delivered in the last N days."
    )
    odr_target: float = Field(default=0.01, gt=0, le=1, description="Marketplace target: order defect rate below this.")
    odr_claims_counted: ClaimsCounted | None = Field(
        default=None,
        description="Override, mainly for drills and tests: when set, which A-to-z claims are order defects in every "
        "marketplace, instead of each claim's marketplace's `claims.odr_claims_counted`: `all` (every filed claim, "
        "as the seller training states) or `exclude_denied_or_withdrawn` (not those an agent denied or the buyer "
        "withdrew).",
    )
    top_reasons: int = Field(default=5, gt=0, description="How many reasons `top_reasons` lists.")
    default_period_days: int = Field(default=30, gt=0, description="Period of a metrics query without `from`.")
    max_period_days: int = Field(default=366, gt=0, description="Longest period one query may cover.")
    flag_sweep_interval_s: float = Field(
        default=3600.0, gt=0, description="How often buyer flags are re-assessed as returns age out of the window."
    )

    def claims_counted(self) -> ClaimsCountedRule:
        """Which claims count in each marketplace installed at start-up, with ODR_CLAIMS_COUNTED applied."""
        served = marketplaces.current()
        if self.odr_claims_counted is not None:
            served = served.overridden(claims={"odr_claims_counted": self.odr_claims_counted})
        return ClaimsCountedRule(
            {code: profile.claims.odr_claims_counted for code, profile in served.items()},
            fallback=self.odr_claims_counted or "all",
            home=self.default_marketplace,
        )
