"""One writer per key inside a process; different keys never wait for each other."""

from __future__ import annotations

import asyncio

from services.metrics.store import KeyedLock


async def test_same_key_is_serialized_other_keys_run_alongside_and_locks_are_forgotten():
    locks, inside, overlaps = KeyedLock(), {"a": 0, "b": 0}, []

    async def write(key: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            overlaps.append(dict(inside))
            await asyncio.sleep(0.01)
            inside[key] -= 1

    await asyncio.gather(*(write(k) for k in "aaabbb"))
    assert max(o["a"] for o in overlaps) == 1 and max(o["b"] for o in overlaps) == 1
    assert any(o["a"] and o["b"] for o in overlaps)
    assert locks._locks == {}
