"""Deadlines: remind sellers, authorize unanswered requests, expire unshipped authorizations and unanswered offers.

Safe with any number of replicas: every action is a write conditional on the version read, so
when two runners pick the same return only the first write lands and only its event is emitted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.returns import domain, offers, replacements
from services.returns.commands import Lifecycle
from services.returns.domain import IllegalTransition
from services.returns.rulebook import MarketplaceRules
from shared import tracing
from shared.marketplaces import UnknownMarketplace
from shared.models import Return
from shared.periodic import Periodic

log = logging.getLogger(__name__)


@dataclass
class DeadlineRun:
    reminded: int = 0
    authorized: int = 0
    expired: int = 0
    offers_expired: int = 0


class DeadlineJob:
    def __init__(self, lifecycle: Lifecycle, *, interval: timedelta, batch_size: int = 200) -> None:
        self.lifecycle = lifecycle
        self.store, self.book = lifecycle.store, lifecycle.book
        self.interval, self.batch_size = interval, batch_size
        self._loop = Periodic("returns-deadlines", self.run_once, interval.total_seconds())

    @property
    def runs(self) -> int:
        """Completed runs of the loop, failed ones included: lets tests wait for a full run."""
        return self._loop.runs

    async def run_once(self) -> DeadlineRun:
        now = self.lifecycle.now()
        run = DeadlineRun()
        served = list(self.book.marketplaces)  # due queries skip returns of unserved marketplaces
        # Deadline first: a request past it is authorized, not reminded.
        for ret in await self.store.past_response_deadline(now, self.batch_size, served):
            run.authorized += await self._apply(
                ret, "return.authorized", lambda r: domain.platform_authorize(r, now, self._rules(r)), now
            )
        for ret in await self._due_for_reminder(now):
            run.reminded += await self._apply(
                ret, "seller.response_due_soon", lambda r: domain.remind(r, now), now, {"reminded_at": now}
            )
        for ret in await self.store.past_ship_by(now, self.batch_size, served):
            run.expired += await self._apply(ret, "return.expired", lambda r: domain.expire(r, now), now)
        for ret in await self.store.offers_past_expiry(now, self.batch_size, served):
            run.offers_expired += await self._apply(
                ret, "return.offer_expired", lambda r: offers.expire_offer(r, now), now
            )
        if run.reminded or run.authorized or run.expired or run.offers_expired:
            log.info("deadline run", extra=vars(run))
        return run

    def _rules(self, ret: Return) -> MarketplaceRules:
        return self.book.rules_for(ret.marketplace)

    async def _due_for_reminder(self, now: datetime) -> list[Return]:
        """Requests whose marketplace's reminder lead has reached them: one query per distinct lead
        (one, with the shipped profiles), each asking only for the marketplaces with that lead."""
        due: dict[str, Return] = {}
        for lead, codes in self.book.reminder_leads().items():
            for ret in await self.store.due_for_reminder(now, now + lead, self.batch_size, codes):
                due.setdefault(ret.return_id, ret)
        return list(due.values())

    async def _apply(
        self, ret: Return, event_type: str, step: Callable[[Return], Return], now: datetime, extra: dict | None = None
    ) -> int:
        try:
            after = step(ret)
        except IllegalTransition:
            return 0
        except UnknownMarketplace:  # its marketplace left the marketplaces file: an operator's matter
            log.warning("deadline skipped: marketplace not served", extra={"return_id": ret.return_id})
            return 0
        # A platform authorization orders a replacement that ships at once, in the same write. When
        # recording, the action starts a trace of its own: its events and their effects join it.
        with tracing.span(f"deadline {event_type}", return_id=ret.return_id):
            handover = await self.store.apply(ret, replacements.with_follow_ups(event_type, after, now), now, extra)
        if handover is None:
            return 0  # another replica (or the seller) got there first
        self.lifecycle.on_commit(ret.return_id, **handover)
        log.info("deadline action", extra={"return_id": ret.return_id, "event_type": event_type})
        return 1

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
