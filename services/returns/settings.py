"""Configuration of the returns service: overrides of the marketplaces' return rules and the deadline job."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

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

    # Deployment-wide overrides of the marketplaces' return rules, mainly for drills and tests: unset by
    # default (every rule comes from the order's marketplace, shared/marketplaces.yaml); when set, the
    # value replaces that rule in every marketplace (services/returns/rulebook.py).
    return_window_days: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Override: the return window of every marketplace, in its local days after delivery, and the shortest "
            "a seller may set."
        ),
    )
    response_deadline: Duration | None = Field(default=None, description="Override: seller's time to answer a request.")
    reminder_lead: Duration | None = Field(
        default=None, description="Override: remind the seller this long before the response deadline."
    )
    authorization_validity: Duration | None = Field(
        default=None, description="Override: time the buyer has to ship once authorized."
    )
    refund_business_days: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Override: refund deadline after receipt, in the marketplace's business days. Each received return "
            "carries the date as `refund_due_at`, which the refunds service enforces."
        ),
    )
    max_restocking_fee_percent: Decimal | None = Field(
        default=None,
        ge=0,
        le=100,
        description=(
            "Override: cap of the restocking fee a seller may charge, percent of the item price. Each received line "
            "carries the percent that applies (`receipt.lines[].restocking_fee_percent`)."
        ),
    )
    non_returnable_categories: list[str] | None = Field(
        default=None, description="Override: categories that cannot be returned."
    )
    high_value_cap: dict[str, int] | None = Field(
        default=None,
        description="Override, per currency, minor units: items priced above it always need the seller's decision.",
    )
    default_return_postage: dict[str, int] | None = Field(
        default=None,
        description="Override: postage of an unpaid label when the seller names none, per currency, minor units.",
    )
    # Resolutions besides a refund on receipt (docs/product.md §12).
    offer_validity: Duration | None = Field(
        default=None, description="Override: a keep-it offer the buyer has not answered expires after this."
    )
    replacements_allowed: bool | None = Field(
        default=None, description="Override: whether buyers may ask for a replacement (where the seller offers one)."
    )
    store_credit_allowed: bool | None = Field(
        default=None, description="Override: whether buyers may ask for their refund as store credit (`refund_to`)."
    )

    # Deadline job.
    job_interval: Duration = Field(
        default=timedelta(seconds=60), description="Pause between two runs of the deadline job."
    )
    job_batch_size: int = Field(default=200, ge=1, description="Returns handled per kind of deadline per run.")
    jobs_enabled: bool = True
