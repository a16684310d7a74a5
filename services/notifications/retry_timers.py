"""Timers that hand a claim back to its worker by `_id` when its retry is due (emails, webhooks)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime

from shared.clock import Clock


class RetryTimers:
    """One timer per scheduled retry; `wake([id])` runs when it is due.

    Only a shortcut: a crash or `cancel_all` loses the timers, and the worker's poll finds the
    due claims in the store anyway.
    """

    def __init__(self, clock: Clock, wake: Callable[[Iterable[str]], None]) -> None:
        self.clock, self._wake = clock, wake
        self._handles: set[asyncio.TimerHandle] = set()

    def at(self, claim_id: str, due: datetime) -> None:
        """Wake `claim_id` at `due` (business time, so a moved test clock moves the timer too)."""
        delay = max((due - self.clock.now()).total_seconds(), 0.0)
        handle: asyncio.TimerHandle | None = None

        def due_now() -> None:
            if handle is not None:
                self._handles.discard(handle)
            self._wake([claim_id])

        handle = asyncio.get_running_loop().call_later(delay, due_now)
        self._handles.add(handle)

    def cancel_all(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
