"""Buyer abuse rules (docs/product.md §9): a buyer's standing over the last N days, and when it flips. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.metrics.facts import DeliveryFact, ReturnFact


@dataclass(frozen=True)
class Thresholds:
    window_days: int = 90
    max_returns: int = 5
    max_return_rate: float = 0.5
    min_orders: int = 4

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.window_days)


@dataclass(frozen=True)
class Standing:
    buyer_id: str
    returns: int
    orders: int
    returned_orders: int
    flagged: bool
    reason: str
    assessed_at: datetime
    review_at: datetime | None
    """Once past this instant the oldest counted return or order has left the window, so the
    standing may change with no new event: re-assess then. None: nothing in the window."""

    @property
    def return_rate(self) -> float | None:
        return self.returned_orders / self.orders if self.orders else None


def assess(
    buyer_id: str,
    returns: Iterable[ReturnFact],
    deliveries: Iterable[DeliveryFact],
    now: datetime,
    thresholds: Thresholds,
) -> Standing:
    """Returns requested and orders delivered in [now - window, now] decide the standing.

    Return rate = orders with at least one return ÷ orders. An order returned in the window counts
    as an order even when its delivery is older than the window (or was never seen), so the rate
    never exceeds 100 %.
    """
    since = now - thresholds.window
    recent_returns = [r for r in returns if r.buyer_id == buyer_id and since <= r.created_at <= now]
    recent_orders = [d for d in deliveries if d.buyer_id == buyer_id and since <= d.delivered_at <= now]
    returned_orders = {r.order_id for r in recent_returns}
    orders = returned_orders | {d.order_id for d in recent_orders}
    moments = [r.created_at for r in recent_returns] + [d.delivered_at for d in recent_orders]

    rate = len(returned_orders) / len(orders) if orders else 0.0
    if len(recent_returns) >= thresholds.max_returns:
        flagged, reason = (
            True,
            f"{len(recent_returns)} returns in {thresholds.window_days} days (limit {thresholds.max_returns})",
        )
    elif len(orders) >= thresholds.min_orders and rate >= thresholds.max_return_rate:
        flagged, reason = (
            True,
            (
                f"return rate {rate:.0%} over {len(orders)} orders in {thresholds.window_days} days "
                f"(limit {thresholds.max_return_rate:.0%} over {thresholds.min_orders})"
            ),
        )
    else:
        flagged, reason = False, "under the abuse thresholds"
    return Standing(
        buyer_id=buyer_id,
        returns=len(recent_returns),
        orders=len(orders),
        returned_orders=len(returned_orders),
        flagged=flagged,
        reason=reason,
        assessed_at=now,
        review_at=min(moments) + thresholds.window if moments else None,
    )
