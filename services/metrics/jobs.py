"""Periodic review of buyer flags: returns age out of the 90-day window without any new event."""
from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from services.metrics.flags import BuyerFlags

log = logging.getLogger(__name__)


class FlagReview:
    def __init__(self, flags: BuyerFlags, interval_s: float) -> None:
        self.flags, self.interval_s = flags, interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="metrics:flag-review")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                reviewed = await self.flags.review_due()
                if reviewed:
                    log.info("buyer flags reviewed", extra={"buyers": reviewed})
            except Exception:  # noqa: BLE001 - the store may be briefly unreachable; try next round
                log.exception("buyer flag review failed")
            await asyncio.sleep(self.interval_s)
