"""What the email dispatcher and the webhook worker share: a claim taken on a free sender slot,
and timers that hand a claim back to its worker by `_id` when its retry is due."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

from shared.clock import Clock


async def claim_on_slot(
    slots: asyncio.Semaphore, claim_next: Callable[[], Awaitable[dict[str, Any] | None]]
) -> dict[str, Any] | None:
    """Wait for a free slot, then claim the next due document on it; None (the slot given back)
    when nothing is due. A claim is never taken without a sender free to work on it."""
    await slots.acquire()
    try:
        doc = await claim_next()
    except BaseException:
        slots.release()
        raise
    if doc is None:
        slots.release()
    return doc


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
