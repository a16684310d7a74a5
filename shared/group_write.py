"""Group commit for a store's writes: requests that arrive while a write is in flight go out together.

A caller submits one item and awaits its own answer. The first item starts a writer; items that come
while it writes queue, and its next write takes all of them (a batch of one is written alone, as
usual). Each answer comes back to its caller; a failed write fails each caller of that batch (their
events are retried by the bus, as a failed single write would be). Used by the outbox relay's
releases (shared/outbox_release.py), the consumers' fact upserts (shared/upserts.py), commits with
events (shared/outbox_commit.py) and inserts of new documents (shared/mongo.py `NewDocuments`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupWriter(Generic[T, R]):
    """`write(items)` answers one result per item, in order. A result that is an exception is
    raised to that item's caller alone (one item refused, the others written)."""

    def __init__(self, write: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]) -> None:
        self.write = write
        self.waiting: list[tuple[T, asyncio.Future[R]]] = []
        self.writer: asyncio.Task[None] | None = None
        self.batches = self.items = 0  # written so far (for tests and curiosity)

    async def submit(self, item: T) -> R:
        return await self.enqueue(item)

    def enqueue(self, item: T) -> asyncio.Future[R]:
        """Queue `item` now (behind every item queued before it) and answer the future of its result."""
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.waiting.append((item, answer))
        if self.writer is None:
            self.writer = asyncio.create_task(self._write_while_waiting())
        return answer

    async def _write_while_waiting(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, []
                self.batches, self.items = self.batches + 1, self.items + len(batch)
                try:
                    results = await self.write([item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 - each caller handles its own failure
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                for (_, answer), result in zip(batch, results, strict=True):
                    if answer.done():
                        continue
                    if isinstance(result, BaseException):
                        answer.set_exception(result)
                    else:
                        answer.set_result(result)
        finally:
            self.writer = None
