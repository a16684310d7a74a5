"""A marketplace's rule set (docs/product.md §13): the contract of the marketplaces file and of
`GET /v1/marketplaces/{code}`.

One deployment serves several marketplaces; every order names one (`Order.marketplace`), and every
service reads that marketplace's rules from here. Loading, validation and lookup are in
shared/marketplaces.py; the shipped profiles in shared/marketplaces.yaml.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_serializer, model_validator

from shared.money import Currency

MarketplaceCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
# Also a MongoDB key in places (a seller's category windows): no dots or dollars.
CategoryName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]


# An amount of a rule, in the currency's minor units: never negative (checked at start-up; a negative
# default postage would otherwise refuse every unpaid-label authorization on a field the caller never sent).
MinorUnits = Annotated[int, Field(ge=0)]


class EmailLocale(StrEnum):
    """The languages emails are written in; a reader's own locale picks one, else the marketplace's."""

    EN = "en"
    ZH_CN = "zh-CN"
    DE = "de"
    JA = "ja"


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"not an IANA time zone: {name!r}") from exc
    return name


TimeZoneName = Annotated[str, AfterValidator(_zone)]


class Rules(BaseModel):
    """Base of the rule blocks: the file is the operator's, so an unknown key is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ReturnRules(Rules):
    """When a buyer may return, how long each side has, and what a seller may charge."""

    window_days: int = Field(
        ge=1,
        le=3650,
        description=(
            "Days after delivery (local days) to ask for a return for a buyer-fault reason (a 'no-reason' "
            "return), for a seller who set no policy."
        ),
    )
    quality_window_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Days after delivery for seller-fault reasons (quality problems); absent: `window_days`.",
    )
    minimum_window_days: int = Field(
        ge=1,
        le=3650,
        description=(
            "The shortest window a seller's policy may set (GB, DE: the 14-day statutory right of withdrawal). "
            "A seller may be more generous, never less."
        ),
    )
    withdrawal_days: int = Field(
        default=0,
        ge=0,
        le=3650,
        description=(
            "Statutory right of withdrawal (UK/EU consumer law), 0 where there is none: a buyer-fault return asked "
            "within this many days of delivery is a withdrawal (`Return.withdrawal`) and bears no restocking fee."
        ),
    )
    response_deadline_hours: float = Field(gt=0, description="The seller's time to answer a request.")
    reminder_lead_hours: float = Field(gt=0, description="The seller is reminded this long before that deadline.")
    authorization_validity_days: float = Field(gt=0, description="The buyer's time to ship once authorized.")
    refund_business_days: int = Field(
        ge=0, description="Refund deadline after receipt, in business days of the marketplace's calendar."
    )
    max_restocking_fee_percent: Decimal = Field(
        ge=0, le=100, description="Cap of the restocking fee a seller may charge, percent of the item price."
    )
    non_returnable_categories: frozenset[CategoryName] = Field(
        default=frozenset(), description="Categories that cannot be returned for any reason."
    )
    no_reason_excluded_categories: frozenset[CategoryName] = Field(
        default=frozenset(),
        description=(
            "Categories returnable only for seller-fault reasons (CN: fresh food, custom-made goods, opened "
            "digital goods)."
        ),
    )
    high_value_cap: dict[Currency, MinorUnits] = Field(
        default_factory=dict,
        description=(
            "Per currency, minor units: items priced above it always need the seller's decision, as do items "
            "in a currency with no cap here."
        ),
    )
    default_return_postage: dict[Currency, MinorUnits] = Field(
        default_factory=dict,
        description="Postage assumed for an unpaid label when the seller names none, per currency, minor units.",
    )
    return_shipping_insurance: bool = Field(
        default=False,
        description=(
            "Order lines may be bought with `return_shipping_insurance` (CN): the buyer's return postage on such a "
            "return is refunded by the insurer, never charged to the seller."
        ),
    )

    @field_serializer("non_returnable_categories", "no_reason_excluded_categories")
    def _sorted(self, categories: frozenset[str]) -> list[str]:
        # A set's order differs between processes: two replicas must show the same document.
        return sorted(categories)

    @model_validator(mode="after")
    def _consistent(self) -> ReturnRules:
        if self.window_days < self.minimum_window_days:
            raise ValueError(f"window_days ({self.window_days}) is below minimum_window_days")
        if self.withdrawal_days > self.minimum_window_days:
            raise ValueError("withdrawal_days must not exceed minimum_window_days: sellers could shorten it")
        if self.quality_window_days is not None and self.quality_window_days < self.window_days:
            raise ValueError("quality_window_days must not be shorter than window_days")
        if self.reminder_lead_hours >= self.response_deadline_hours:
            raise ValueError("reminder_lead_hours must be shorter than response_deadline_hours")
        return self

    def window_for(self, seller_fault: bool) -> int:
        """The marketplace's own window for a reason of this fault."""
        return (self.quality_window_days or self.window_days) if seller_fault else self.window_days


class ResolutionRules(Rules):
    """Resolutions besides a refund on receipt (§12) the marketplace allows."""

    replacements_allowed: bool = True
    store_credit_allowed: bool = True
    store_credit_bonus_percent: Decimal = Field(
        default=Decimal(0), ge=0, le=100, description="Bonus on a refund taken as store credit, rounded half-up."
    )
    offer_validity_hours: float = Field(default=72, gt=0, description="An unanswered keep-it offer expires then.")


class ClaimRules(Rules):
    """A-to-z claims and chargebacks (§11)."""

    opens_after_days: int = Field(
        default=15, ge=0, description="A claim may be filed this many days after the order (RETURN_*: at once)."
    )
    window_days: int = Field(default=90, gt=0, description="...and until this many days after the order.")
    response_hours: float = Field(default=72, gt=0, description="The seller's time to answer; then granted.")
    reminder_hours: float = Field(default=24, gt=0, description="Reminder this long before the response deadline.")
    chargeback_evidence_days: float = Field(default=7, gt=0, description="The seller's time to send evidence.")
    odr_claims_counted: Literal["all", "exclude_denied_or_withdrawn"] = Field(
        default="all", description="Which claims count toward the order defect rate."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ClaimRules:
        if self.opens_after_days >= self.window_days:
            raise ValueError("opens_after_days must be before window_days")
        if self.reminder_hours >= self.response_hours:
            raise ValueError("reminder_hours must be shorter than response_hours")
        return self


class Marketplace(Rules):
    """One marketplace's rule set, as the marketplaces file gives it and `GET /v1/marketplaces/{code}` shows it."""

    code: MarketplaceCode
    name: str = Field(min_length=1)
    currency: Currency = Field(description="The marketplace's currency (ISO 4217); amounts in its minor units.")
    calendar_country: str = Field(
        pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$",
        description="Country (optionally `-subdivision`, `GB-ENG`) whose weekends and public holidays count.",
    )
    country: str = Field(
        default="",
        pattern=r"^([A-Z]{2})?$",
        description="ISO country of the marketplace, for comparing with return addresses; default the calendar's.",
    )
    time_zone: TimeZoneName = Field(description="IANA zone in which a marketplace day starts and ends.")
    default_locale: EmailLocale = Field(description="Email language of a party whose order names no locale.")
    returns: ReturnRules
    resolutions: ResolutionRules = ResolutionRules()
    claims: ClaimRules = ClaimRules()

    @model_validator(mode="after")
    def _country(self) -> Marketplace:
        if not self.country:
            object.__setattr__(self, "country", self.calendar_country.partition("-")[0])
        return self

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)
