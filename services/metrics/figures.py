"""The seller and marketplace figures of docs/product.md §9, computed from facts for a period. Pure.

A period is half-open, [start, end). Per-return figures (rates, reasons, percentiles) cover the
returns requested in the period, so a return is judged once, in the period it was requested.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.metrics import resolution_figures, schemas
from services.metrics.facts import DeliveryFact, RefundFact, ReturnFact
from services.metrics.resolution_facts import StoreCreditFact
from shared.models import ReturnStatus
from shared.money import Money


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    def __contains__(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end

    def schema(self) -> schemas.Period:
        return schemas.Period(from_=self.start, to=self.end)


def ratio(count: int, of: int) -> float | None:
    return count / of if of else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p % of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def requested_in(returns: Iterable[ReturnFact], period: Period) -> list[ReturnFact]:
    return [r for r in returns if r.created_at in period]


def counts(returns: Sequence[ReturnFact], refunds: Sequence[RefundFact], period: Period) -> schemas.Counts:
    def happened(attribute: str) -> int:
        return sum(1 for r in returns if getattr(r, attribute) in period)

    return schemas.Counts(
        requests=happened("created_at"),
        authorizations=happened("authorized_at"),
        platform_authorizations=sum(1 for r in returns if r.platform_authorized and r.authorized_at in period),
        rejections=happened("rejected_at"),
        closures=happened("closed_at"),
        shipments=happened("shipped_at"),
        receipts=happened("received_at"),
        expirations=happened("expired_at"),
        refunds=len(issued_in(refunds, period)),
    )


def issued_in(refunds: Iterable[RefundFact], period: Period) -> list[RefundFact]:
    return [f for f in refunds if f.issued and f.issued_at in period]


def per_currency(refunds: Iterable[RefundFact], amount_of: Callable[[RefundFact], int] | None = None) -> list[Money]:
    """The refunds' amounts (or `amount_of` each) summed per currency."""
    totals: dict[str, int] = defaultdict(int)
    for refund in refunds:
        totals[refund.currency] += refund.amount if amount_of is None else amount_of(refund)
    return [Money(amount=amount, currency=currency) for currency, amount in sorted(totals.items())]


def insured_return_shipping(issued: Iterable[RefundFact]) -> list[Money]:
    """Return postage the shipping insurer refunded with the issued refunds, per currency: apart from
    `refunded`, since neither the seller nor the marketplace paid it."""
    return per_currency((f for f in issued if f.insured_return_shipping), lambda f: f.insured_return_shipping)


def returns_by_status(requested: Sequence[ReturnFact], refunds: Sequence[RefundFact]) -> dict[str, int]:
    # The returns service moves a return to `refunded` on `return.refunded` without publishing again,
    # so an issued refund is the evidence of that last step.
    refunded = {f.return_id for f in refunds if f.issued and f.return_id}
    statuses = Counter(ReturnStatus.REFUNDED.value if r.return_id in refunded else r.status for r in requested)
    return dict(sorted(statuses.items()))


def response_time(requested: Sequence[ReturnFact]) -> schemas.ResponseTime:
    seconds = [(r.responded_at - r.created_at).total_seconds() for r in requested if r.responded_at]
    return schemas.ResponseTime(
        responded=len(seconds), p50_seconds=percentile(seconds, 50), p90_seconds=percentile(seconds, 90)
    )


def rate(count: int, of: int) -> schemas.Rate:
    return schemas.Rate(count=count, of=of, rate=ratio(count, of))


def dissatisfaction(valid: Sequence[ReturnFact], target: float) -> schemas.Dissatisfaction:
    count = sum(1 for r in valid if r.dissatisfied)
    value = ratio(count, len(valid))
    return schemas.Dissatisfaction(
        count=count, of=len(valid), rate=value, target=target, meets_target=None if value is None else value < target
    )


def refund_timeliness(issued: Sequence[RefundFact]) -> schemas.Timeliness:
    judged = [f.on_time for f in issued if f.on_time is not None]
    on_time = sum(1 for ok in judged if ok)
    return schemas.Timeliness(count=on_time, of=len(judged), rate=ratio(on_time, len(judged)))


def top_reasons(requested: Sequence[ReturnFact], limit: int) -> list[schemas.ReasonCount]:
    returns: Counter[tuple[str, str]] = Counter()
    units: Counter[tuple[str, str]] = Counter()
    for ret in requested:
        for key in {(line.reason_code, line.fault) for line in ret.lines}:
            returns[key] += 1
        for line in ret.lines:
            units[(line.reason_code, line.fault)] += line.quantity
    ranked = sorted(returns, key=lambda key: (-returns[key], -units[key], key[0]))
    return [
        schemas.ReasonCount(reason_code=code, fault=fault, returns=returns[(code, fault)], units=units[(code, fault)])
        for code, fault in ranked[:limit]
    ]


def sku_return_rates(
    requested: Sequence[ReturnFact],
    deliveries: Iterable[DeliveryFact],
    period: Period,
    returns: Iterable[ReturnFact] = (),
) -> list[schemas.SkuReturnRate]:
    """Units on the period's return requests ÷ units delivered in the period, per SKU; and of the units
    received in the period (`returns`' receipts), the share restocked."""
    delivered: Counter[str] = Counter()
    for order in deliveries:
        if order.delivered_at in period:
            for line in order.lines:
                delivered[line.sku] += line.quantity
    returned: Counter[str] = Counter()
    for ret in requested:
        for returned_line in ret.lines:
            returned[returned_line.sku] += returned_line.quantity
    received, restocked = resolution_figures.units_restocked(returns, period)
    return [
        schemas.SkuReturnRate(
            sku=sku,
            units_delivered=delivered[sku],
            units_returned=returned[sku],
            rate=ratio(returned[sku], delivered[sku]),
            units_received=received[sku],
            units_restocked=restocked[sku],
            restock_rate=ratio(restocked[sku], received[sku]),
        )
        for sku in sorted(set(delivered) | set(returned) | set(received))
    ]


def figures(
    returns: Sequence[ReturnFact],
    refunds: Sequence[RefundFact],
    period: Period,
    *,
    target: float,
    credit: Iterable[StoreCreditFact] = (),
) -> dict:
    """The figures shared by a seller's report and the marketplace overview, as schema fields."""
    requested = requested_in(returns, period)
    valid = [r for r in requested if r.in_policy]
    issued = issued_in(refunds, period)
    automatic = [f for f in issued if f.automatic]
    return dict(
        period=period.schema(),
        counts=counts(returns, refunds, period),
        returns_by_status=returns_by_status(requested, refunds),
        refunded=per_currency(issued),
        insured_return_shipping=insured_return_shipping(issued),
        response_time=response_time(requested),
        valid_requests=len(valid),
        late_response=rate(sum(1 for r in valid if r.late_response), len(valid)),
        invalid_rejection=rate(sum(1 for r in valid if r.invalid_rejection), len(valid)),
        negative_feedback=rate(sum(1 for r in valid if r.negative_feedback), len(valid)),
        dissatisfaction=dissatisfaction(valid, target),
        refund_timeliness=refund_timeliness(issued),
        auto_refunds=schemas.AutoRefunds(count=len(automatic), amounts=per_currency(automatic)),
        resolutions=resolution_figures.resolutions(returns, credit, period),
    )


def seller_metrics(
    seller_id: str,
    returns: Sequence[ReturnFact],
    refunds: Sequence[RefundFact],
    deliveries: Iterable[DeliveryFact],
    period: Period,
    *,
    target: float,
    reasons: int,
    credit: Iterable[StoreCreditFact] = (),
) -> schemas.SellerMetrics:
    mine = [r for r in returns if r.seller_id == seller_id]
    requested = requested_in(mine, period)
    refunded = [f for f in refunds if f.seller_id == seller_id]
    granted = [e for e in credit if e.seller_id == seller_id]
    return schemas.SellerMetrics(
        seller_id=seller_id,
        **figures(mine, refunded, period, target=target, credit=granted),
        top_reasons=top_reasons(requested, reasons),
        sku_return_rates=sku_return_rates(
            requested, (d for d in deliveries if d.seller_id == seller_id), period, returns=mine
        ),
    )


def overview(
    returns: Sequence[ReturnFact],
    refunds: Sequence[RefundFact],
    period: Period,
    *,
    target: float,
    reasons: int,
    flagged_buyers: int,
    credit: Sequence[StoreCreditFact] = (),
) -> schemas.Overview:
    requested = requested_in(returns, period)
    by_seller: dict[str, list[ReturnFact]] = defaultdict(list)
    for ret in requested:
        if ret.in_policy:
            by_seller[ret.seller_id].append(ret)
    over = sum(1 for valid in by_seller.values() if dissatisfaction(valid, target).meets_target is False)
    return schemas.Overview(
        **figures(returns, refunds, period, target=target, credit=credit),
        store_credit_spent=resolution_figures.spent(credit, period),
        sellers=len({r.seller_id for r in requested}),
        sellers_over_target=over,
        flagged_buyers=flagged_buyers,
        top_reasons=top_reasons(requested, reasons),
    )
