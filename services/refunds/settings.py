"""Configuration of the refunds service: gateways, their retry budget, and the deadline job.

No marketplace rule is set here: the refund deadline is the `refund_due_at` the returns service
puts on each received return, and the restocking fee the percent it puts on each received line
(services/returns/policy.py); the store-credit bonus is the order's marketplace's
(`resolutions.store_credit_bonus_percent`), which STORE_CREDIT_BONUS_PERCENT overrides when set.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from shared import marketplaces
from shared.marketplaces import Marketplaces
from shared.settings import CommonSettings


class Settings(CommonSettings):
    service_name: str = "refunds"
    port: int = 8002

    stripe_api_base: str = "http://127.0.0.1:12111"
    stripe_api_key: str = "sk_test_123"
    gateway_timeout_s: float = Field(default=10.0, gt=0, description="One gateway call; a timeout is retried.")
    gateway_retry_delays_ms: list[int] = Field(
        default=[500, 2000, 8000],
        description="Wait before each new gateway call after a timeout or 5xx; exhausted -> refund.failed.",
    )

    lease_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "How long one replica owns a refund it is paying; a crashed replica's refunds, and a payment an "
            "error interrupted (the store away), are resumed after it. Each gateway attempt after the first "
            "renews it, so it must outlast one attempt plus the delay before the next (GATEWAY_TIMEOUT_S + "
            "the longest GATEWAY_RETRY_DELAYS_MS)."
        ),
    )
    job_interval_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Pause between runs of the deadline job. A run reads the store only when a deadline or a lease "
            "this replica knows of has come, or a sweep is due."
        ),
    )
    sweep_interval_s: float = Field(
        default=600.0,
        gt=0,
        description=(
            "Pause between the deadline job's sweeps of the refunds collection (at start, then this often) "
            "for overdue due refunds and for pending ones whose payer died (two indexed queries). Between "
            "sweeps a replica acts on what it knows: the deadlines of the due refunds it "
            "opened and the leases of payments it began or a sweep found. So a restarted replica resumes "
            "its payments when their lease ends, and a refund opened by a replica gone for good is taken "
            "over or resumed by another's next sweep."
        ),
    )
    job_batch_size: int = Field(default=100, ge=1)
    jobs_enabled: bool = True

    # Store credit (docs/product.md §12): a return's refund the buyer asked to have as credit.
    store_credit_bonus_percent: Decimal | None = Field(
        default=None,
        ge=0,
        le=100,
        max_digits=5,
        decimal_places=2,
        description=(
            "Override, mainly for drills and tests: when set, the bonus on a refund taken as store credit (percent "
            "of the refund, rounded half-up) in every marketplace, instead of each marketplace's "
            "`resolutions.store_credit_bonus_percent`."
        ),
    )

    def served_marketplaces(self) -> Marketplaces:
        """The marketplaces installed at start-up, with this service's overrides applied."""
        served = marketplaces.current()
        if self.store_credit_bonus_percent is None:
            return served
        return served.overridden(resolutions={"store_credit_bonus_percent": self.store_credit_bonus_percent})
