"""Periodic: a stop always ends the loop, whatever the cancel it sends meets."""

from __future__ import annotations

import asyncio

import pytest

from shared.periodic import Periodic


async def stopped_within(loop: Periodic, seconds: float = 2.0) -> bool:
    """Did stop() return within `seconds`? (Not by cancelling it: that would cancel the loop again.)"""
    stopping = asyncio.create_task(loop.stop())
    done, _ = await asyncio.wait([stopping], timeout=seconds)
    return bool(done)


@pytest.mark.parametrize("turns", range(6))
async def test_a_stop_right_after_a_wake_ends_the_loop(turns):
    # On Python 3.11 asyncio.wait_for returned normally when the cancel met a wait that had just
    # been woken: the loop ran on and stop() waited forever. Some number of turns of the event
    # loop between wake() and stop() lands the cancel in that window.
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1

    loop = Periodic("test", step, 3600)
    loop.start()
    while runs == 0:
        await asyncio.sleep(0)
    loop.wake()
    for _ in range(turns):
        await asyncio.sleep(0)
    assert await stopped_within(loop)


async def test_a_step_that_swallows_its_cancel_still_ends_the_loop():
    started, runs = asyncio.Event(), 0

    async def step() -> None:
        nonlocal runs
        runs += 1
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:  # as a careless library might
            pass

    loop = Periodic("test", step, 0.001)
    loop.start()
    await started.wait()
    assert await stopped_within(loop)
    assert runs == 1


async def test_a_wake_runs_the_step_again_before_the_interval():
    runs = asyncio.Queue[int]()
    count = 0

    async def step() -> None:
        nonlocal count
        count += 1
        runs.put_nowait(count)

    loop = Periodic("test", step, 3600)
    loop.start()
    assert await runs.get() == 1
    loop.wake()
    async with asyncio.timeout(2):
        assert await runs.get() == 2
    assert await stopped_within(loop)
