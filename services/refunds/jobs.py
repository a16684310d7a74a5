"""The refund-deadline job: overdue manual refunds paid by the platform, stalled payments resumed.

Safe with several replicas: a refund is taken over by a conditional update on its version, and
paid only by whoever holds its lease.
"""

from __future__ import annotations

import logging

from services.refunds.refunding import Refunds
from shared.clock import Clock, SystemClock
from shared.periodic import Periodic

log = logging.getLogger(__name__)


class RefundDeadlineJob:
    def __init__(self, refunds: Refunds, clock: Clock, *, interval_s: float, batch_size: int) -> None:
        self.refunds, self.clock = refunds, clock
        self.interval_s, self.batch_size = interval_s, batch_size
        self._loop = Periodic("refund-deadline-job", self.run_once, interval_s)

    async def run_once(self) -> tuple[int, int]:
        """(refunds taken over at their deadline, stalled payments resumed)."""
        now = self.clock.now()
        taken = await self.refunds.take_over_overdue(now, self.batch_size)
        # Stalled means its pay lease ran out: operational time, not the business clock.
        resumed = await self.refunds.resume_stalled(SystemClock().now(), self.batch_size)
        if taken or resumed:
            log.info("refund job run", extra={"taken_over": taken, "resumed": resumed})
        return taken, resumed

    def start(self) -> None:
        self._loop.start()

    def wake(self) -> None:
        self._loop.wake()

    async def stop(self) -> None:
        await self._loop.stop()
