"""A background loop for deadline jobs and reviews: run a step every interval until stopped.

A failing step is logged and tried again next round: the store or broker may be away for a moment,
and a job that dies silently is worse than one that keeps trying.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, step: Callable[[], Awaitable[Any]], interval_s: float) -> None:
        self.name, self.step, self.interval_s = name, step, interval_s
        self.runs = 0
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    def wake(self) -> None:
        """Run the step now instead of at the end of the current wait."""
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
                await self.step()
            except Exception:  # noqa: BLE001 - see the module docstring
                log.exception("periodic step failed", extra={"job": self.name})
            self.runs += 1
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.interval_s)
