"""A seller's order defect rate and rating (SPEC §11), and the overview's dispute totals. Pure.

The window is half-open, [now - days, now), and holds the seller's orders delivered in it. A
defect belongs to its order: negative feedback (1-2 stars, not removed), an A-to-z claim (which
claims count is the rule of the claim's marketplace, `claims.odr_claims_counted`, or
ODR_CLAIMS_COUNTED everywhere when set), a service chargeback (fraud chargebacks are the card holder's, never
the seller's). The order defect rate is orders with at least one defect ÷ orders delivered.

The rating (the marketplace's seller training): +100 per order delivered in the window with no
defect and no refund issued (a refund of any kind is the refund or concession), -500 per defect
on those orders, each counted (two claims on one order are two), and -500 per order of the seller
that expired unshipped in the window (never delivered, so it is in the window by `expired_at`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from services.metrics import schemas
from services.metrics.dispute_facts import ChargebackFact, ClaimFact, ExpiredFact, FeedbackFact
from services.metrics.facts import DeliveryFact, RefundFact
from services.metrics.figures import Period, rate, ratio
from shared.dispute_models import ChargebackStatus

PERFECT_ORDER_POINTS = 100
DEFECT_POINTS = -500

# Which claims count toward the rate and the rating: every filed claim (the marketplace's seller
# training), or not those decided for the seller (denied) or withdrawn by the buyer.
ClaimsCounted = Literal["all", "exclude_denied_or_withdrawn"]
# `OrderDefects.claims_counted` when the window's orders are of marketplaces with different rules.
BY_MARKETPLACE = "by_marketplace"


@dataclass(frozen=True)
class ClaimsCountedRule:
    """Which claims count, per marketplace code (each one's `claims.odr_claims_counted`, with
    ODR_CLAIMS_COUNTED already applied when set: Settings.claims_counted). A code no longer served
    (a fact older than the marketplaces file) counts by `fallback`; `home` is the marketplace a
    report with no orders names the rule of (DEFAULT_MARKETPLACE)."""

    by_marketplace: Mapping[str, ClaimsCounted] = field(default_factory=dict)
    fallback: ClaimsCounted = "all"
    home: str = "US"

    @classmethod
    def everywhere(cls, counted: ClaimsCounted) -> ClaimsCountedRule:
        return cls({}, counted)

    def of(self, marketplace: str) -> ClaimsCounted:
        return self.by_marketplace.get(marketplace, self.fallback)

    def applied(self, marketplaces: Iterable[str]) -> tuple[str, dict[str, str]]:
        """What a report says was counted over orders of these marketplaces: the one rule, or
        `by_marketplace` when they differ; and the rule of each."""
        each = {code: str(self.of(code)) for code in sorted(set(marketplaces))}
        rules = set(each.values())
        if not rules:
            return self.of(self.home), each
        return (rules.pop() if len(rules) == 1 else BY_MARKETPLACE), each


def window_ending(now: datetime, days: int) -> Period:
    return Period(now - timedelta(days=days), now)


def claim_counts(claim: ClaimFact, counted: ClaimsCountedRule) -> bool:
    return counted.of(claim.marketplace) == "all" or not claim.denied_or_withdrawn


def order_defects(
    seller_id: str,
    window: Period,
    *,
    deliveries: Iterable[DeliveryFact],
    claims: Iterable[ClaimFact],
    chargebacks: Iterable[ChargebackFact],
    feedback: Iterable[FeedbackFact],
    refunds: Iterable[RefundFact],
    expired: Iterable[ExpiredFact],
    target: float,
    claims_counted: ClaimsCountedRule,
    window_days: int,
) -> schemas.OrderDefects:
    """The facts may hold more than the window's: only the seller's orders delivered in it count."""
    delivered = [d for d in deliveries if d.seller_id == seller_id and d.delivered_at in window]
    orders = {d.order_id for d in delivered}
    counted_claims = [c for c in claims if c.order_id in orders and claim_counts(c, claims_counted)]
    negative = [f for f in feedback if f.order_id in orders and f.counts]
    on_orders = [c for c in chargebacks if c.order_id in orders]
    service = [c for c in on_orders if c.service]
    gone = [e for e in expired if e.seller_id == seller_id and e.expired_at in window]

    defective: dict[str, set[str]] = {
        "claims": {c.order_id for c in counted_claims},
        "feedback": {f.order_id for f in negative},
        "chargebacks": {c.order_id for c in service if c.order_id is not None},
    }
    any_defect = set().union(*defective.values())
    refunded = {r.order_id for r in refunds if r.issued and r.order_id in orders}
    perfect = len(orders - any_defect - refunded)
    penalties = len(counted_claims) + len(negative) + len(service) + len(gone)
    odr = ratio(len(any_defect), len(orders))
    counted, counted_by_marketplace = claims_counted.applied(d.marketplace for d in delivered)
    return schemas.OrderDefects(
        seller_id=seller_id,
        window=window.schema(),
        window_days=window_days,
        orders_delivered=len(orders),
        negative_feedback=rate(len(defective["feedback"]), len(orders)),
        a_to_z_claims=rate(len(defective["claims"]), len(orders)),
        service_chargebacks=rate(len(defective["chargebacks"]), len(orders)),
        order_defect_rate=rate(len(any_defect), len(orders)),
        target=target,
        meets_target=None if odr is None else odr < target,
        claims_counted=counted,
        claims_counted_by_marketplace=counted_by_marketplace,
        fraud_chargebacks=len(on_orders) - len(service),
        rating=schemas.SellerRating(
            score=PERFECT_ORDER_POINTS * perfect + DEFECT_POINTS * penalties,
            perfect_orders=perfect,
            claims=len(counted_claims),
            negative_feedback=len(negative),
            service_chargebacks=len(service),
            orders_expired=len(gone),
        ),
    )


def dispute_totals(
    period: Period,
    *,
    claims: Sequence[ClaimFact],
    chargebacks: Sequence[ChargebackFact],
    feedback: Sequence[FeedbackFact],
    expired: Sequence[ExpiredFact],
) -> schemas.DisputeTotals:
    """Each step is counted in the period it happened in (a claim filed in March and granted in
    April is filed in March's totals and granted in April's)."""

    def claims_at(attribute: str) -> list[ClaimFact]:
        return [c for c in claims if getattr(c, attribute) in period]

    def chargebacks_of(service: bool) -> schemas.ChargebackTotals:
        mine = [c for c in chargebacks if c.service == service]
        closed = [c for c in mine if c.closed_at in period]
        return schemas.ChargebackTotals(
            opened=sum(1 for c in mine if c.opened_at in period),
            won=sum(1 for c in closed if c.status == ChargebackStatus.WON),
            lost=sum(1 for c in closed if c.status == ChargebackStatus.LOST),
        )

    granted = claims_at("granted_at")
    return schemas.DisputeTotals(
        claims=schemas.ClaimTotals(
            filed=len(claims_at("filed_at")),
            refunded_by_seller=len(claims_at("seller_refunded_at")),
            granted=len(granted),
            granted_automatically=sum(1 for c in granted if c.automatic),
            denied=len(claims_at("denied_at")),
            withdrawn=len(claims_at("withdrawn_at")),
        ),
        fraud_chargebacks=chargebacks_of(service=False),
        service_chargebacks=chargebacks_of(service=True),
        negative_feedback=sum(1 for f in feedback if f.counts and f.left_at in period),
        feedback_removed=sum(1 for f in feedback if f.removed_at in period),
        orders_expired=sum(1 for e in expired if e.expired_at in period),
    )
