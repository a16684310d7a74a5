"""Claim deadlines: remind the seller before `respond_by`, grant an unanswered claim at it.

Safe with any number of replicas: every action is a write conditional on the version read, so
when two runners pick the same claim only the first write lands and only its event is emitted.
Time is the injected business clock (ClaimDesk.now).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from services.disputes import domain
from services.disputes.claims import ClaimDesk
from services.disputes.domain import IllegalTransition
from shared import tracing
from shared.dispute_models import Claim
from shared.periodic import Periodic

log = logging.getLogger(__name__)


@dataclass
class DeadlineRun:
    reminded: int = 0
    granted: int = 0


class ClaimDeadlineJob:
    def __init__(self, desk: ClaimDesk, *, interval_s: float, batch_size: int = 100) -> None:
        self.desk, self.store, self.batch_size = desk, desk.store, batch_size
        self._loop = Periodic("claim-deadlines", self.run_once, interval_s)

    @property
    def runs(self) -> int:
        """Completed runs of the loop, failed ones included: lets tests wait for a full run."""
        return self._loop.runs

    async def run_once(self) -> DeadlineRun:
        now = self.desk.now()
        run = DeadlineRun()
        # Deadline first: a claim past it is granted, not reminded.
        for claim in await self.store.past_deadline(now, self.batch_size):
            run.granted += await self._apply(claim, "claim.granted", lambda c: domain.grant_late(c, now), now)
        # Each marketplace reminds its own lead before the deadline: one sweep per distinct lead.
        for lead, marketplace in self.desk.rules.reminder_sweeps():
            for claim in await self.store.due_for_reminder(now, now + lead, self.batch_size, marketplace):
                run.reminded += await self._apply(
                    claim, "claim.response_due_soon", lambda c: domain.remind(c, now), now
                )
        if run.reminded or run.granted:
            log.info("claim deadline run", extra=vars(run))
        return run

    async def _apply(self, claim: Claim, event_type: str, step: Callable[[Claim], Claim], now: datetime) -> int:
        try:
            after = step(claim)
        except IllegalTransition:
            return 0
        # When recording, the action starts a trace of its own, which its event carries.
        with tracing.span(f"deadline {event_type}", claim_id=claim.claim_id):
            handover = await self.store.commit_claim(claim, after, [event_type], now)
        if handover is None:
            return 0  # another replica (or the seller) got there first
        self.desk.committed(after, handover)
        log.info("claim deadline action", extra={"claim_id": claim.claim_id, "event_type": event_type})
        return 1

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
