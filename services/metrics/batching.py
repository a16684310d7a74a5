"""Fact upserts of one collection written together: one bulk write for the ones that wait.

A fact whose version is compared strictly (`$lt`: emails by their time, deliveries by the order
system's sequence) is written by one conditional upsert (services/metrics/store.py). Under load
many such events are handled at once (the bus's prefetch), each costing a command; so upserts
queue per collection while a write of that collection is in flight (group commit) and the next
write takes them all as one unordered bulk write. Each answer stays exact, because the filter is
strict: an upserted document is the first of its fact, a matched one was older and is replaced
(its version differs, so it is modified), and one that collided on `_id` (a version at least as
new is stored, or another replica inserted meanwhile) is decided again by itself, as a single
upsert's DuplicateKeyError is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000

# (filter, fields) -> how it went, decided alone: what the store does for one upsert.
Single = Callable[[dict[str, Any], dict[str, Any]], Awaitable[Any]]


class UpsertBatcher:
    """Strict conditional upserts of one collection; `upsert` answers as `single` would."""

    def __init__(self, collection: Any, single: Single, *, first: Any, newer: Any) -> None:
        self.collection, self.single = collection, single
        self.first, self.newer = first, newer  # the answers for an upserted and a replaced fact
        self.waiting: list[tuple[dict[str, Any], dict[str, Any], asyncio.Future[Any]]] = []
        self.writer: asyncio.Task[None] | None = None
        self.batches = self.upserts = 0  # written so far (for tests and curiosity)

    async def upsert(self, current: dict[str, Any], fields: dict[str, Any]) -> Any:
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.append((current, fields, answer))
        if self.writer is None:
            self.writer = asyncio.create_task(self._write_while_waiting())
        return await answer

    async def _write_while_waiting(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, []
                self.batches, self.upserts = self.batches + 1, self.upserts + len(batch)
                try:
                    answers = await self._write(batch)
                except Exception as exc:  # noqa: BLE001 - each caller's event is retried by the bus
                    for *_, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                for (*_, answer), result in zip(batch, answers, strict=True):
                    if not answer.done():
                        answer.set_result(result)
        finally:
            self.writer = None

    async def _write(self, batch: list[tuple[dict[str, Any], dict[str, Any], asyncio.Future[Any]]]) -> list[Any]:
        if len(batch) == 1:
            current, fields, _ = batch[0]
            return [await self.single(current, fields)]
        operations = [UpdateOne(current, {"$set": fields}, upsert=True) for current, fields, _ in batch]
        collided: set[int] = set()
        try:
            result = await self.collection.bulk_write(operations, ordered=False)
            upserted = set(result.upserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            collided = {error["index"] for error in errors}
            upserted = {entry["index"] for entry in exc.details.get("upserted", [])}
        answers = []
        for index, (current, fields, _) in enumerate(batch):
            if index in collided:
                answers.append(await self.single(current, fields))
            else:
                answers.append(self.first if index in upserted else self.newer)
        return answers
