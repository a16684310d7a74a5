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


# How far ahead of this service's clock another service's timestamp may be and still count now.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class RecentReturn:
    """A return the buyer requested: what the standing needs of it (immutable across versions)."""

    return_id: str
    order_id: str
    at: datetime  # created_at


@dataclass(frozen=True)
class RecentDelivery:
    """An order delivered to the buyer, as of its newest `order.delivered` (sequence)."""

    order_id: str
    sequence: int
    at: datetime  # delivered_at


@dataclass(frozen=True)
class Window:
    """A buyer's returns and delivered orders not older than the window's start, each once by id.

    Kept in the buyer's document and changed only by these pure steps, so that adding the same
    entry again, in any order, and trimming at any later instant give the same window.
    """

    returns: tuple[RecentReturn, ...] = ()
    deliveries: tuple[RecentDelivery, ...] = ()

    def with_return(self, entry: RecentReturn, since: datetime) -> Window:
        kept = self.trimmed(since)
        if entry.at < since or any(r.return_id == entry.return_id for r in kept.returns):
            return kept
        return Window((*kept.returns, entry), kept.deliveries)

    def with_delivery(self, entry: RecentDelivery, since: datetime) -> Window:
        kept = self.trimmed(since)
        known = next((d for d in kept.deliveries if d.order_id == entry.order_id), None)
        if known is not None and known.sequence >= entry.sequence:
            return kept
        others = tuple(d for d in kept.deliveries if d.order_id != entry.order_id)
        return Window(kept.returns, (*others, entry) if entry.at >= since else others)

    def trimmed(self, since: datetime) -> Window:
        """Without the entries older than `since` (they can never count again: time only moves on)."""
        return Window(
            tuple(r for r in self.returns if r.at >= since), tuple(d for d in self.deliveries if d.at >= since)
        )

    def merged(self, other: Window, since: datetime) -> Window:
        window = self.trimmed(since)
        for ret in other.returns:
            window = window.with_return(ret, since)
        for delivery in other.deliveries:
            window = window.with_delivery(delivery, since)
        return window


def window_of(
    buyer_id: str, returns: Iterable[ReturnFact], deliveries: Iterable[DeliveryFact], since: datetime
) -> Window:
    """The window the buyer's facts make (other buyers' facts are left out)."""
    window = Window()
    for r in returns:
        if r.buyer_id == buyer_id:
            window = window.with_return(RecentReturn(r.return_id, r.order_id, r.created_at), since)
    for d in deliveries:
        if d.buyer_id == buyer_id:
            window = window.with_delivery(RecentDelivery(d.order_id, d.sequence, d.delivered_at), since)
    return window


def assess(
    buyer_id: str,
    returns: Iterable[ReturnFact],
    deliveries: Iterable[DeliveryFact],
    now: datetime,
    thresholds: Thresholds,
) -> Standing:
    """The standing from the buyer's facts (see `assess_window`)."""
    return assess_window(buyer_id, window_of(buyer_id, returns, deliveries, now - thresholds.window), now, thresholds)


def assess_window(buyer_id: str, window: Window, now: datetime, thresholds: Thresholds) -> Standing:
    """Returns requested and orders delivered since `now - window` decide the standing.

    Return rate = orders with at least one return ÷ orders. An order returned in the window counts
    as an order even when its delivery is older than the window (or was never seen), so the rate
    never exceeds 100 %. An entry a little after `now` counts too: its time is another service's
    clock, and a buyer's fifth return must not wait for their next event to be counted.
    """
    since, until = now - thresholds.window, now + CLOCK_SKEW
    recent_returns = [r for r in window.returns if since <= r.at <= until]
    recent_orders = [d for d in window.deliveries if since <= d.at <= until]
    returned_orders = {r.order_id for r in recent_returns}
    orders = returned_orders | {d.order_id for d in recent_orders}
    moments = [r.at for r in recent_returns] + [d.at for d in recent_orders]

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
