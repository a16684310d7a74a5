"""What emails and webhook deliveries share: the claim of a due document (its store), a claim taken
on a free sender slot, and timers that hand a claim back to its worker by `_id` when its retry is due."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from shared.clock import Clock


async def claim_due(
    collection: Any, due_by: datetime, lease_now: datetime, update: dict[str, Any], by_id: str | None = None
) -> dict[str, Any] | None:
    """Apply the claiming `update` to a pending document due by `due_by` whose last claim lapsed
    before `lease_now` (none, or a crashed worker's): `by_id`, or the one due first. Due-ness is
    business time, the lease operational time. Answers the document as claimed, or None."""
    wanted: dict[str, Any] = {} if by_id is None else {"_id": by_id}
    # "pending": NotificationStatus.PENDING and WebhookDeliveryStatus.PENDING alike.
    return await collection.find_one_and_update(
        {**wanted, "status": "pending", "next_attempt_at": {"$lte": due_by}, "claimed_until": {"$lt": lease_now}},
        update,
        sort=None if by_id is not None else [("next_attempt_at", ASCENDING)],
        return_document=ReturnDocument.AFTER,
    )


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
