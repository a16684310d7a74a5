"""Configuration of the disputes service: deployment-wide overrides of the claim rules, Stripe, jobs.

The claim window, the seller's response time and reminder and the chargeback evidence days are
rules of each marketplace (the `claims` block of its profile, shared/marketplaces.yaml). The
settings of the same names, unset by default, replace that rule in every marketplace when set:
overrides, mainly for drills and tests (services/disputes/rulebook.py).
"""

from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings

_OVERRIDE = "Override, mainly for drills and tests (default: each marketplace's `claims` rule): "


class Settings(CommonSettings):
    service_name: str = "disputes"
    port: int = 8005

    claim_opens_after_days: int | None = Field(
        default=None,
        ge=0,
        description=_OVERRIDE
        + "a claim may be filed this many days after the order was placed (RETURN_* reasons: at once).",
    )
    claim_window_days: int | None = Field(
        default=None, gt=0, description=_OVERRIDE + "...and until this many days after it."
    )
    claim_response_hours: float | None = Field(
        default=None, gt=0, description=_OVERRIDE + "the seller's time to answer a claim; then it is granted."
    )
    claim_reminder_hours: float | None = Field(
        default=None,
        gt=0,
        description=_OVERRIDE + "the seller is reminded this long before the claim's response deadline.",
    )
    chargeback_evidence_days: float | None = Field(
        default=None, gt=0, description=_OVERRIDE + "the seller's time to send evidence for a chargeback."
    )
    stripe_api_base: str = "http://127.0.0.1:12111"
    stripe_api_key: str = "sk_test_123"
    stripe_webhook_secret: str = Field(
        default="whsec_test_secret", description="Signing secret of the Stripe webhook endpoint (`whsec_...`)."
    )
    stripe_webhook_tolerance_s: int = Field(
        default=300, gt=0, description="A webhook delivery signed longer ago than this is refused as old."
    )
    stripe_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one call to Stripe (evidence).")
    job_interval_s: float = Field(default=30.0, gt=0, description="Pause between runs of the deadline job.")
    job_batch_size: int = Field(default=100, ge=1)
    jobs_enabled: bool = True
