"""HTTP shapes of the metrics API. Rates are fractions (0.1 = 10 %), None when nothing to divide by."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from shared.money import Money


class Period(BaseModel):
    from_: datetime = Field(alias="from", description="Inclusive start (UTC).")
    to: datetime = Field(description="Exclusive end (UTC).")

    model_config = {"populate_by_name": True}


class Counts(BaseModel):
    """Transitions whose time falls in the period (a request made earlier may be answered in it)."""

    requests: int = 0
    authorizations: int = 0
    platform_authorizations: int = Field(0, description="Authorized by the platform at the response deadline.")
    rejections: int = 0
    closures: int = 0
    shipments: int = 0
    receipts: int = 0
    expirations: int = 0
    refunds: int = Field(0, description="Refunds issued in the period, of any kind.")


class Rate(BaseModel):
    count: int
    of: int = Field(description="The denominator.")
    rate: float | None


class Dissatisfaction(Rate):
    target: float
    meets_target: bool | None = Field(description="rate < target; None without valid requests.")


class ResponseTime(BaseModel):
    responded: int = Field(description="Requests of the period that got an answer.")
    p50_seconds: float | None
    p90_seconds: float | None


class Timeliness(Rate):
    """Refunds of received returns issued in the period (the deadline runs from the receipt: returnless,
    direct, claim and offer refunds have none); `count` of them were paid by it."""


class AutoRefunds(BaseModel):
    """Refunds issued in the period that the platform paid without the seller: at the refund deadline
    in manual mode, and A-to-z claims granted because the seller did not answer in time."""

    count: int
    amounts: list[Money]


class ReasonCount(BaseModel):
    reason_code: str
    fault: str
    returns: int = Field(description="Returns naming this reason (once per return).")
    units: int


class SkuReturnRate(BaseModel):
    sku: str
    units_delivered: int = Field(description="Units of the SKU delivered in the period.")
    units_returned: int = Field(
        description="Units of the SKU on the return requests of the period, whatever became of them "
        "(rejected and withdrawn ones included: the rate measures how often buyers want to send it back)."
    )
    rate: float | None = Field(description="units_returned ÷ units_delivered; null when none was delivered.")
    units_received: int = Field(0, description="Units of the SKU received back in the period (receipt lines > 0).")
    units_restocked: int = Field(0, description="Of those, units with disposition `restock`.")
    restock_rate: float | None = Field(None, description="units_restocked ÷ units_received.")


class OfferFigures(BaseModel):
    """Keep-it offers made, accepted, declined and expired in the period."""

    made: int = 0
    accepted: int = 0
    declined: int = 0
    expired: int = 0
    acceptance_rate: Rate = Field(
        default_factory=lambda: Rate(count=0, of=0, rate=None),
        description="Of the offers made in the period, those the buyer accepted (so far).",
    )
    settled_without_return: list[Money] = Field(
        default_factory=list, description="Offers accepted in the period, per currency: refunded, the item kept."
    )


class ReplacementFigures(BaseModel):
    asked: int = Field(0, description="Returns requested in the period asking for a replacement.")
    shipped: int = Field(0, description="Replacements shipped in the period.")
    unavailable: int = Field(0, description="Replacements the seller could not send (refunded instead), in the period.")
    replaced: int = Field(0, description="Returns that ended `replaced` in the period.")


class Resolutions(BaseModel):
    """How returns were settled other than by a refund on receipt (SPEC §12)."""

    offers: OfferFigures = Field(default_factory=OfferFigures)
    replacements: ReplacementFigures = Field(default_factory=ReplacementFigures)
    store_credit_granted: list[Money] = Field(
        default_factory=list, description="Refunds paid as store credit in the period, bonus included, per currency."
    )


class Figures(BaseModel):
    """Per-return figures cover the returns requested in the period (by `created_at`)."""

    period: Period
    counts: Counts
    returns_by_status: dict[str, int] = Field(description="Current status of the period's requests.")
    refunded: list[Money] = Field(description="Issued in the period, per currency.")
    insured_return_shipping: list[Money] = Field(
        default_factory=list,
        description=(
            "Return postage refunded by the return-shipping insurer with the refunds issued in the period (their "
            "`breakdown.insured_return_shipping`), per currency: not part of `refunded`, not paid by the seller."
        ),
    )
    response_time: ResponseTime
    valid_requests: int = Field(description="In-policy requests of the period.")
    late_response: Rate
    invalid_rejection: Rate
    negative_feedback: Rate
    dissatisfaction: Dissatisfaction
    refund_timeliness: Timeliness
    auto_refunds: AutoRefunds
    resolutions: Resolutions = Field(default_factory=Resolutions)


class SellerMetrics(Figures):
    seller_id: str
    top_reasons: list[ReasonCount]
    sku_return_rates: list[SkuReturnRate]


# ---- the order defect rate (SPEC §11) -------------------------------------------------------------


class SellerRating(BaseModel):
    """The seller rating of the marketplace's seller training, over the window."""

    score: int = Field(
        description="+100 per perfect order, -500 per claim, negative feedback, service chargeback and order "
        "expired unshipped."
    )
    perfect_orders: int = Field(description="Orders delivered in the window with no defect and no refund issued.")
    claims: int = Field(description="Counted claims on the window's orders (each claim, not each order).")
    negative_feedback: int = Field(description="Negative feedback on the window's orders, not removed.")
    service_chargebacks: int = Field(description="Service chargebacks on the window's orders.")
    orders_expired: int = Field(description="The seller's orders that expired unshipped in the window.")


class OrderDefects(BaseModel):
    """Rates are of the orders delivered in the window: `count` orders have that defect."""

    seller_id: str
    window: Period
    window_days: int
    orders_delivered: int = Field(description="Orders of the seller delivered in the window.")
    negative_feedback: Rate = Field(description="Orders with 1-2 star feedback that was not removed.")
    a_to_z_claims: Rate = Field(description="Orders with a counted A-to-z claim (see `claims_counted`).")
    service_chargebacks: Rate = Field(description="Orders with a service chargeback (fraud ones never count).")
    order_defect_rate: Rate = Field(description="Orders with at least one of the three defects.")
    target: float = Field(description="The order defect rate must stay below this.")
    meets_target: bool | None = Field(description="order_defect_rate < target; None without delivered orders.")
    claims_counted: str = Field(
        description="`all`: every filed claim counts; `exclude_denied_or_withdrawn`: claims decided for the seller "
        "or withdrawn do not; `by_marketplace`: the window's orders are of marketplaces whose rules differ (each "
        "claim counts by its marketplace's `claims.odr_claims_counted`, see `claims_counted_by_marketplace`)."
    )
    claims_counted_by_marketplace: dict[str, str] = Field(
        default_factory=dict,
        description="The rule of each marketplace the window's orders are of (its `claims.odr_claims_counted`, or "
        "ODR_CLAIMS_COUNTED where the deployment overrides it).",
    )
    fraud_chargebacks: int = Field(description="Fraud chargebacks on the window's orders: shown, never counted.")
    rating: SellerRating


class ClaimTotals(BaseModel):
    filed: int = 0
    refunded_by_seller: int = Field(0, description="The seller answered with a refund.")
    granted: int = 0
    granted_automatically: int = Field(0, description="Of those, granted at the seller's deadline.")
    denied: int = 0
    withdrawn: int = 0


class ChargebackTotals(BaseModel):
    opened: int = 0
    won: int = 0
    lost: int = 0


class DisputeTotals(BaseModel):
    """Claims, chargebacks and feedback by what happened in the period."""

    claims: ClaimTotals = Field(default_factory=ClaimTotals)
    fraud_chargebacks: ChargebackTotals = Field(default_factory=ChargebackTotals)
    service_chargebacks: ChargebackTotals = Field(default_factory=ChargebackTotals)
    negative_feedback: int = Field(0, description="Negative feedback left in the period and not removed.")
    feedback_removed: int = Field(0, description="Feedback removed by an agent in the period.")
    orders_expired: int = Field(0, description="Orders that expired unshipped in the period.")


class Overview(Figures):
    sellers: int = Field(description="Sellers with a request in the period.")
    sellers_over_target: int = Field(description="Of those, sellers whose dissatisfaction rate is at or above target.")
    flagged_buyers: int = Field(description="Buyers flagged now.")
    top_reasons: list[ReasonCount]
    emails_sent: int = Field(default=0, description="Emails delivered in the period (notification.sent).")
    emails_failed: int = Field(default=0, description="Emails given up on in the period (notification.failed).")
    disputes: DisputeTotals = Field(
        default_factory=DisputeTotals, description="Claims, chargebacks and seller feedback (SPEC §11)."
    )
    store_credit_spent: list[Money] = Field(
        default_factory=list, description="Store credit buyers spent at checkout in the period, per currency."
    )


class BuyerFlagState(BaseModel):
    flagged: bool
    reason: str
    since: datetime | None = Field(description="When the current state began (None: never flagged).")
    version: int


class BuyerMetrics(BaseModel):
    buyer_id: str
    window_days: int
    returns: int
    orders: int
    returned_orders: int
    return_rate: float | None
    flag: BuyerFlagState
    assessed_at: datetime


class RebuildResult(BaseModel):
    buyers_assessed: int
    flagged: int
    unflagged: int
