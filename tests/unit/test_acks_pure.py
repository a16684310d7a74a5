"""shared/acks.py: which acks go out, and never one that settles a delivery not yet handled."""

from __future__ import annotations

import asyncio

from shared.acks import AckBatcher, _Tags, plan


def test_a_run_of_settled_deliveries_goes_out_as_one_multiple_ack() -> None:
    tags = _Tags(waiting={1: 0.0, 2: 0.0, 3: 0.0})
    assert plan(tags, now=0.0, delay=1.0) == (3, [])
    assert (tags.through, tags.waiting, tags.settled) == (3, {}, set())


def test_the_run_stops_at_a_delivery_still_being_handled() -> None:
    tags = _Tags(waiting={1: 0.0, 2: 0.0, 4: 0.0, 5: 0.0})  # 3 is in a handler (or not handed out yet)
    assert plan(tags, now=0.5, delay=1.0) == (2, [])
    assert tags.through == 2 and set(tags.waiting) == {4, 5}
    # Once they waited `delay`, those behind it go alone: a slow handler holds no one's ack for long.
    assert plan(tags, now=1.0, delay=1.0) == (None, [4, 5])
    assert tags.through == 2 and tags.settled == {4, 5}
    # When 3 is done, the run covers it and the ones already acked alone; 3 itself is the tag.
    tags.waiting[3] = 1.5
    assert plan(tags, now=1.5, delay=1.0) == (3, [])
    assert (tags.through, tags.settled) == (5, set())


def test_a_nacked_delivery_continues_the_run_but_is_never_the_acked_tag() -> None:
    tags = _Tags(waiting={1: 0.0, 3: 0.0}, settled={2})
    assert plan(tags, now=0.0, delay=1.0) == (3, [])
    tags = _Tags(waiting={1: 0.0}, settled={2})
    assert plan(tags, now=0.0, delay=1.0) == (1, [])
    assert tags.through == 2


def test_everything_sends_what_waits_behind_an_unsettled_delivery() -> None:
    tags = _Tags(waiting={2: 0.0, 3: 0.0})
    assert plan(tags, now=0.0, delay=1.0, everything=True) == (None, [2, 3])


class Channel:
    def __init__(self) -> None:
        self.is_closed = False
        self.sent: list[tuple[int, bool]] = []

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> None:
        self.sent.append((delivery_tag, multiple))


async def test_acks_of_a_trickle_wait_for_the_delay_then_go_together() -> None:
    batcher, channel = AckBatcher(delay=0.01, limit=100), Channel()
    for tag in (1, 2, 3):
        batcher.ack(channel, tag)
    assert channel.sent == []
    for _ in range(100):
        if channel.sent:
            break
        await asyncio.sleep(0.005)
    assert channel.sent == [(3, True)]


async def test_the_limit_sends_without_waiting_and_close_sends_the_rest() -> None:
    batcher, channel = AckBatcher(delay=60, limit=2), Channel()
    batcher.ack(channel, 1)
    batcher.ack(channel, 3)  # 2 is still in a handler
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert channel.sent == [(1, True)]
    await batcher.close()
    assert channel.sent == [(1, True), (3, False)]


async def test_a_closed_channel_takes_its_acks_with_it() -> None:
    batcher, old, new = AckBatcher(delay=60, limit=100), Channel(), Channel()
    batcher.ack(old, 1)
    old.is_closed = True  # a reconnect: tags start again at 1 on the new channel
    batcher.ack(new, 1)
    await batcher.close()
    assert (old.sent, new.sent) == ([], [(1, True)])


async def test_a_channel_failing_mid_flush_is_dropped() -> None:
    class Broken(Channel):
        async def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> None:
            raise ConnectionError("gone")

    batcher, broken = AckBatcher(delay=60, limit=100), Broken()
    batcher.ack(broken, 1)
    await batcher.close()
    assert batcher._channels == {} and batcher.waiting == 0


async def test_close_leaves_no_timer_behind_a_flush_in_flight() -> None:
    batcher, channel = AckBatcher(delay=0.01, limit=1), Channel()
    batcher.ack(channel, 2)  # the limit starts a flush; 1 is still in a handler, so 2 keeps waiting
    await batcher.close()
    assert channel.sent == [(2, False)] and batcher._timer is None and batcher.waiting == 0
