"""The refund-deadline job: overdue manual refunds paid by the platform, stalled payments resumed.

Safe with several replicas: a refund is taken over by a conditional update on its version, and
paid only by whoever holds its lease.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from services.refunds.refunding import Refunds
from shared.clock import Clock

log = logging.getLogger(__name__)


class RefundDeadlineJob:
    def __init__(self, refunds: Refunds, clock: Clock, *, interval_s: float, batch_size: int) -> None:
        self.refunds, self.clock = refunds, clock
        self.interval_s, self.batch_size = interval_s, batch_size
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()

    async def run_once(self) -> tuple[int, int]:
        """(refunds taken over at their deadline, stalled payments resumed)."""
        now = self.clock.now()
        taken = await self.refunds.take_over_overdue(now, self.batch_size)
        resumed = await self.refunds.resume_stalled(now, self.batch_size)
        if taken or resumed:
            log.info("refund job run", extra={"taken_over": taken, "resumed": resumed})
        return taken, resumed

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="refund-deadline-job")

    def wake(self) -> None:
        self._wakeup.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 - the next run tries again
                log.exception("refund job run failed")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.interval_s)
