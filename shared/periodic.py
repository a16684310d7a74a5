"""A background loop for deadline jobs, reviews and relays: run a step every interval until stopped.

A failing step is logged and tried again, after a growing delay when `max_backoff_s` is set: the
store or broker may be away for a moment, and a job that dies silently is worse than one that
keeps trying.

Stopping does not rely on cancellation alone. On Python 3.11 `asyncio.wait_for` loses a cancel that
arrives as its wait ends (woken or timed out at that moment), and a library step may swallow one:
the loop then ran on and `stop()` waited for it forever. So `stop()` also sets a flag the loop
checks after every step and wait, and the wait uses `asyncio.timeout`, which keeps the cancel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

log = logging.getLogger(__name__)


def backoff_seconds(failures: int, *, base: float = 1.0, cap: float = 60.0) -> float:
    """Delay after `failures` failed attempts in a row: base, 2×base, 4×base, … up to cap."""
    return min(cap, base * 2.0 ** max(0, failures - 1))


class Periodic:
    def __init__(
        self, name: str, step: Callable[[], Awaitable[Any]], interval_s: float, *, max_backoff_s: float | None = None
    ) -> None:
        self.name, self.step, self.interval_s, self.max_backoff_s = name, step, interval_s, max_backoff_s
        self.runs = 0
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._stopping = False

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name=self.name)

    def wake(self) -> None:
        """Run the step now instead of at the end of the current wait."""
        self._wakeup.set()

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # unlike awaiting the task, keeps a cancel of our caller's
            self._task = None

    async def _loop(self) -> None:
        failures = 0
        while not self._stopping:
            self._wakeup.clear()  # before the run, so a wake() during it triggers another
            try:
                await self.step()
                failures = 0
            except Exception:  # logged and tried again: see the module docstring
                failures += 1
                log.exception("periodic step failed", extra={"job": self.name, "failures": failures})
            self.runs += 1
            delay = self.interval_s
            if failures and self.max_backoff_s is not None:
                delay = backoff_seconds(failures, base=self.interval_s, cap=self.max_backoff_s)
            if not self._stopping:
                await wait_for_event(self._wakeup, delay)


async def wait_for_event(event: asyncio.Event, seconds: float) -> None:
    """Wait until `event` is set, at most `seconds`; a cancel always propagates (see the docstring)."""
    with suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
