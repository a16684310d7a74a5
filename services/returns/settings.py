"""Configuration of the returns service: the marketplace's return rules (defaults in policy.py) and the deadline job."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from services.returns.policy import DEFAULT_RULES as RULES
from shared.settings import CommonSettings


def _seconds(value: Any) -> Any:
    """Environment values may be plain seconds (`172800`, `0.5`) as well as ISO 8601 (`PT48H`)."""
    if isinstance(value, str):
        try:
            return timedelta(seconds=float(value))
        except ValueError:
            return value
    return value


Duration = Annotated[timedelta, BeforeValidator(_seconds)]


class Settings(CommonSettings):
    service_name: str = "returns"
    port: int = 8001

    # The marketplace's rules: defaults in services/returns/policy.py (MarketplaceRules), the one place
    # each is decided. A seller policy may be more generous, never weaker.
    return_window_days: int = Field(
        default=RULES.return_window_days,
        ge=1,
        description="Days after delivery, counted in the marketplace's local days.",
    )
    response_deadline: Duration = Field(
        default=RULES.response_deadline, description="Seller's time to answer a request."
    )
    reminder_lead: Duration = Field(
        default=RULES.reminder_lead, description="Remind the seller this long before the response deadline."
    )
    authorization_validity: Duration = Field(
        default=RULES.authorization_validity, description="Time the buyer has to ship once authorized."
    )
    refund_business_days: int = Field(
        default=RULES.refund_business_days,
        ge=0,
        description=(
            "Refund deadline after receipt, in the marketplace's business days. The one source of the rule: each "
            "received return carries the date as `refund_due_at`, which the refunds service enforces."
        ),
    )
    max_restocking_fee_percent: Decimal = Field(
        default=RULES.max_restocking_fee_percent,
        ge=0,
        le=100,
        description=(
            "Cap of the restocking fee a seller may charge, percent of the item price. The one source of the rule: "
            "each received line carries the percent that applies (`receipt.lines[].restocking_fee_percent`)."
        ),
    )
    non_returnable_categories: list[str] = Field(default=sorted(RULES.non_returnable_categories))
    high_value_cap: dict[str, int] = Field(
        default=dict(RULES.high_value_cap),
        description="Per currency, in minor units: items priced above it always need the seller's decision.",
    )
    default_return_postage: dict[str, int] = Field(
        default=dict(RULES.default_return_postage),
        description="Postage assumed for an unpaid label when the seller names none, per currency, minor units.",
    )

    # Resolutions besides a refund on receipt (docs/product.md §12).
    offer_validity: Duration = Field(
        default=timedelta(hours=72), description="A keep-it offer the buyer has not answered expires after this."
    )
    replacements_allowed: bool = Field(
        default=True, description="Whether buyers may ask for a replacement (where the seller's policy offers one)."
    )
    store_credit_allowed: bool = Field(
        default=True, description="Whether buyers may ask for their refund as store credit (`refund_to`)."
    )

    # Deadline job.
    job_interval: Duration = Field(
        default=timedelta(seconds=60), description="Pause between two runs of the deadline job."
    )
    job_batch_size: int = Field(default=200, ge=1, description="Returns handled per kind of deadline per run.")
    jobs_enabled: bool = True
