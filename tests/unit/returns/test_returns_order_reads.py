"""OrderReads: a create's first reads start when it is made (beside the Idempotency-Key's claim),
and a request that never uses them (a replay, a refusal) drops them without a trace."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from services.returns.commands import OrderReads


class Reads:
    """The two store reads a create starts with; each waits for `release` once it has begun."""

    def __init__(self, fail: bool = False) -> None:
        self.begun: list[str] = []
        self.release = asyncio.Event()
        self.fail = fail

    async def get_order(self, order_id: str) -> Any:
        self.begun.append(f"order {order_id}")
        await self.release.wait()
        if self.fail:
            raise ConnectionError("store unreachable")
        return {"order_id": order_id}

    async def returns_of_order(self, order_id: str) -> tuple[list[Any], int]:
        self.begun.append(f"returns of {order_id}")
        await self.release.wait()
        return [], 1


async def test_both_reads_begin_before_anyone_asks_for_them() -> None:
    store = Reads()
    reads = OrderReads(store, "o-1")  # type: ignore[arg-type]
    await asyncio.sleep(0)  # one turn of the loop: what the claim's own I/O gives them
    assert store.begun == ["order o-1", "returns of o-1"]
    store.release.set()
    order, (returns, next_slot) = await reads.result()
    assert (order, returns, next_slot) == ({"order_id": "o-1"}, [], 1)


async def test_dropping_unused_reads_cancels_them() -> None:
    store = Reads()
    reads = OrderReads(store, "o-2")  # type: ignore[arg-type]
    await asyncio.sleep(0)
    reads.drop()
    with pytest.raises(asyncio.CancelledError):
        await reads.result()


@pytest.mark.parametrize("failed", [True, False], ids=["failed reads", "reads cancelled while running"])
async def test_dropped_reads_are_not_reported_as_unretrieved(failed: bool) -> None:
    # A gather cancelled while its reads run ends with a CancelledError set as its exception (not as
    # cancelled): unretrieved, asyncio logs it as an error when the gather is collected.
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        store = Reads(fail=True)
        reads = OrderReads(store, "o-3")  # type: ignore[arg-type]
        if failed:
            store.release.set()
        for _ in range(5):  # the reads begin (and fail), and gather takes their results
            await asyncio.sleep(0)
        reads.drop()
        for _ in range(5):  # the cancelled reads end
            await asyncio.sleep(0)
        del reads
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert reported == []


async def test_a_failed_read_reaches_whoever_awaits_it() -> None:
    store = Reads(fail=True)
    reads = OrderReads(store, "o-4")  # type: ignore[arg-type]
    store.release.set()
    with pytest.raises(ConnectionError):
        await reads.result()
    reads.drop()  # after the result was taken: nothing left to do
