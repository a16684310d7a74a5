"""Configuration of the returns service: the marketplace's return rules and the deadline job."""
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


class ReturnsSettings(CommonSettings):
    service_name: str = "returns"
    port: int = 8001

    # Marketplace rules (SPEC §3). A seller policy may be more generous, never weaker.
    return_window_days: int = Field(default=30, ge=1, description="Days after delivery, counted in the marketplace's local days.")
    response_deadline: Duration = Field(default=timedelta(hours=48), description="Seller's time to answer a request.")
    reminder_lead: Duration = Field(default=timedelta(hours=12), description="Remind the seller this long before the response deadline.")
    authorization_validity: Duration = Field(default=timedelta(days=30), description="Time the buyer has to ship once authorized.")
    refund_business_days: int = Field(default=2, ge=0, description=(
        "Refund deadline after receipt, in the marketplace's business days. The one source of the rule: each "
        "received return carries the date as `refund_due_at`, which the refunds service enforces."))
    max_restocking_fee_percent: Decimal = Decimal(50)
    non_returnable_categories: list[str] = Field(default=[
        "digital_content", "gift_cards", "perishable_food", "personalized", "hazardous_materials"])
    high_value_cap: dict[str, int] = Field(
        default={"USD": 75000, "EUR": 70000, "GBP": 60000, "CAD": 100000, "AUD": 110000,
                 "JPY": 110000, "CNY": 500000, "BHD": 280000},
        description="Per currency, in minor units: items priced above it always need the seller's decision.")
    default_return_postage: dict[str, int] = Field(
        default={"USD": 899, "EUR": 699, "GBP": 599, "CAD": 1199, "AUD": 1295,
                 "JPY": 1000, "CNY": 3000, "BHD": 3000},
        description="Postage assumed for an unpaid label when the seller names none, per currency, minor units.")

    # Deadline job.
    job_interval: Duration = Field(default=timedelta(seconds=60), description="Pause between two runs of the deadline job.")
    job_batch_size: int = Field(default=200, ge=1, description="Returns handled per kind of deadline per run.")
    jobs_enabled: bool = True
