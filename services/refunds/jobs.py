"""The refund-deadline job: overdue manual refunds paid by the platform, stalled payments resumed.

Both queries are scans on the embedded server, so a run reads the store only when something is
known to be due: the deadline of a due refund this replica opened, the lease end of a payment this
replica began and an error interrupted, or a sweep (at start, then every `sweep_interval_s`), which
also notes the pending refunds whose lease ends before the next one, to resume each when it ends.

Safe with several replicas: a refund is taken over by a conditional update on its version, and
paid only by whoever holds its lease.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from services.refunds.refunding import Refunds
from shared.clock import Clock, SystemClock
from shared.periodic import Periodic

log = logging.getLogger(__name__)


class RefundDeadlineJob:
    def __init__(
        self,
        refunds: Refunds,
        clock: Clock,
        *,
        interval_s: float,
        sweep_interval_s: float,
        lease: timedelta,
        batch_size: int,
    ) -> None:
        self.refunds, self.clock = refunds, clock
        self.interval_s, self.sweep_interval_s, self.batch_size = interval_s, sweep_interval_s, batch_size
        self.lease = lease
        self._next_sweep = 0.0  # time.monotonic(); the first run sweeps
        self._loop = Periodic("refund-deadline-job", self.run_once, interval_s)

    async def run_once(self) -> tuple[int, int]:
        """(refunds taken over at their deadline, stalled payments resumed)."""
        now = self.clock.now()
        # Stalled means its pay lease ran out: operational time, not the business clock.
        lease_now = SystemClock().now()
        sweep = time.monotonic() >= self._next_sweep
        if sweep:
            self._next_sweep = time.monotonic() + self.sweep_interval_s
        taken = 0
        if sweep or self.refunds.deadline_passed(now):
            taken = await self.refunds.take_over_overdue(now, self.batch_size)
        # The leases ending before the next sweep are all a replica needs to know until then.
        horizon = lease_now + self.lease + timedelta(seconds=self.sweep_interval_s)
        if sweep and await self.refunds.watch_stalled(horizon, self.batch_size):
            self._next_sweep = 0.0  # a full batch: sweep again at the next run
        resumed = await self.refunds.resume_stalled(lease_now, self.batch_size)
        if taken or resumed:
            log.info("refund job run", extra={"taken_over": taken, "resumed": resumed})
        return taken, resumed

    def start(self) -> None:
        self._loop.start()

    def wake(self) -> None:
        self._loop.wake()

    async def stop(self) -> None:
        await self._loop.stop()
