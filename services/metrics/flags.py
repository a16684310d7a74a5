"""Buyer abuse flags: assess a buyer from facts, store the state, emit `buyer.flagged`/`unflagged`
exactly once per crossing (the event rides in the buyer document's outbox)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from services.metrics import telemetry
from services.metrics.abuse import RecentDelivery, RecentReturn, Standing, Thresholds, Window, assess_window
from services.metrics.schemas import RebuildResult
from services.metrics.store import MetricsStore
from shared import tracing
from shared.clock import Clock
from shared.events import CloudEvent, new_event
from shared.models import BuyerFlag
from shared.mongo import as_stored

log = logging.getLogger(__name__)
SERVICE = "metrics"


def flag_event(standing: Standing, version: int) -> CloudEvent:
    data = BuyerFlag(
        buyer_id=standing.buyer_id,
        flagged=standing.flagged,
        returns_90d=standing.returns,
        orders_90d=standing.orders,
        return_rate_90d=standing.return_rate or 0.0,
        reason=standing.reason,
        at=standing.assessed_at,
    )
    event_type = "buyer.flagged" if standing.flagged else "buyer.unflagged"
    return new_event(
        event_type, service=SERVICE, subject=standing.buyer_id, data=data, sequence=version, time=standing.assessed_at
    )


class BuyerFlags:
    def __init__(
        self,
        store: MetricsStore,
        thresholds: Thresholds,
        clock: Clock,
        on_change: Callable[..., None] = lambda *_, **__: None,
    ) -> None:
        self.store, self.thresholds, self.clock = store, thresholds, clock
        self.on_change = on_change  # OutboxRelay.wake(buyer_id, **how): the flag's event is committed

    def standing(self, buyer_id: str, now: datetime) -> Callable[[Window], Standing]:
        return lambda window: assess_window(buyer_id, window, now, self.thresholds)

    async def note_return(self, buyer_id: str, return_id: str, order_id: str, created_at: datetime) -> Standing:
        """Count a return the buyer requested (once, whatever the redeliveries) and re-assess."""
        entry = RecentReturn(return_id, order_id, as_stored(created_at))
        return await self.settle(buyer_id, change=lambda window, since: window.with_return(entry, since))

    async def note_delivery(self, buyer_id: str, order_id: str, sequence: int, delivered_at: datetime) -> Standing:
        """Count an order delivered to the buyer (its newest sequence) and re-assess."""
        entry = RecentDelivery(order_id, sequence, as_stored(delivered_at))
        return await self.settle(buyer_id, change=lambda window, since: window.with_delivery(entry, since))

    async def settle(
        self,
        buyer_id: str,
        trigger: str = "event",
        change: Callable[[Window, datetime], Window] = lambda window, _: window,
        reseed: bool = False,
    ) -> Standing:
        """Apply `change` to the buyer's window, re-assess the buyer now; store the outcome, and
        queue an event when the flag flips."""
        now = self.clock.now()
        since = now - self.thresholds.window
        standing, handover = await self.store.settle_flag(
            buyer_id,
            lambda window: change(window, since),
            self.standing(buyer_id, now),
            since,
            flag_event,
            reseed=reseed,
        )
        telemetry.assessments.labels(trigger).inc()
        if handover is not None:
            telemetry.flag_changes.labels(str(standing.flagged).lower()).inc()
            log.info(
                "buyer flag changed",
                extra={
                    "buyer_id": buyer_id,
                    "flagged": standing.flagged,
                    "returns": standing.returns,
                    "orders": standing.orders,
                },
            )
            self.on_change(buyer_id, **handover)
        return standing

    async def review_due(self) -> int:
        """Re-assess buyers whose oldest counted fact has aged out of the window since last time."""
        due = await self.store.buyers_due_for_review(self.clock.now())
        for buyer_id in due:
            with tracing.span("buyer flag review", buyer_id=buyer_id):  # a trace of its own, when recording
                await self.settle(buyer_id, trigger="review")
        telemetry.flagged_buyers.set(await self.store.flagged_buyers())
        return len(due)

    async def rebuild(self) -> RebuildResult:
        """Re-assess every buyer known from facts (after a restore, or a change of thresholds): each
        buyer's window is merged with their facts first (a longer window needs facts already trimmed)."""
        flagged = unflagged = 0
        buyers = await self.store.buyers_with_facts()
        for buyer_id in sorted(buyers):
            before = await self.store.flag_state(buyer_id)
            standing = await self.settle(buyer_id, trigger="rebuild", reseed=True)
            was = before.flagged if before else False
            flagged += standing.flagged and not was
            unflagged += was and not standing.flagged
        telemetry.flagged_buyers.set(await self.store.flagged_buyers())
        return RebuildResult(buyers_assessed=len(buyers), flagged=flagged, unflagged=unflagged)
