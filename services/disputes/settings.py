"""Configuration of the disputes service: claim windows and deadlines, chargeback evidence, jobs.

These are the marketplace's A-to-z and chargeback settings (docs/product.md, disputes); every one
is a default a deployment may change.
"""

from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings


class Settings(CommonSettings):
    service_name: str = "disputes"
    port: int = 8005

    claim_opens_after_days: int = Field(
        default=15,
        ge=0,
        description="A claim may be filed this many days after the order was placed (RETURN_* reasons: at once).",
    )
    claim_window_days: int = Field(default=90, gt=0, description="...and until this many days after it.")
    claim_response_hours: float = Field(
        default=72.0,
        gt=0,
        description="The seller's time to answer a claim (older marketplace rules: 168, 7 days); then it is granted.",
    )
    claim_reminder_hours: float = Field(
        default=24.0, gt=0, description="The seller is reminded this long before the claim's response deadline."
    )
    chargeback_evidence_days: float = Field(
        default=7.0, gt=0, description="The seller's time to send evidence for a chargeback."
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
