"""A consumer's positive acks, sent in batches: one `basic.ack(multiple=True)` for a run of deliveries.

Why: every ack costs a frame through the AMQP client's writer task here and, on a quorum queue, a
settle command in the broker's log; at a steady trickle each delivery paid for its own. An ack now
waits up to `delay` seconds (or until `limit` wait), and then one frame settles the whole run.

Safety: `multiple=True` settles every unsettled delivery of the channel up to the tag, so it is sent
only for a run in which every delivery is known settled here. Delivery tags count 1, 2, 3, ... per
channel, so `through` (every tag up to it settled) only ever advances over tags that were seen
settled; a delivery that arrived but is still being handled (or not yet handed to a handler) stops
the run. The deliveries behind such a one are acked one by one once they waited `delay`, so a slow
handler holds neither their acks nor the prefetch window for long. A nack or reject goes out at
once, and only then counts as settled (`settled`). When a channel closes, its acks not yet sent go
with it: the broker delivers those messages again, as it would after a crash (handlers are
idempotent; delivery is at least once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


class AckChannel(Protocol):
    """What this needs of an aiormq channel."""

    @property
    def is_closed(self) -> bool: ...

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> None: ...


@dataclass
class _Tags:
    through: int = 0  # every tag up to this one is settled (acked, or nacked/rejected)
    settled: set[int] = field(default_factory=set)  # above `through`: acked alone, nacked or rejected
    waiting: dict[int, float] = field(default_factory=dict)  # above `through`: ack not sent yet -> since


def plan(tags: _Tags, now: float, delay: float, *, everything: bool = False) -> tuple[int | None, list[int]]:
    """What to send now: the tag of one `multiple` ack (None: none) and the tags to ack alone.

    Updates `tags` as if they were sent. Pure, so its rules are tested without a broker.
    """
    run_end, top = tags.through, None
    while True:
        following = run_end + 1
        if following in tags.waiting:
            top = following
        elif following not in tags.settled:
            break
        run_end = following
    for tag in range(tags.through + 1, run_end + 1):
        tags.waiting.pop(tag, None)
        tags.settled.discard(tag)
    tags.through = run_end
    alone = sorted(tag for tag, since in tags.waiting.items() if everything or now - since >= delay)
    for tag in alone:
        del tags.waiting[tag]
        tags.settled.add(tag)
    return top, alone


class AckBatcher:
    def __init__(self, delay: float = 0.02, limit: int = 64) -> None:
        self.delay, self.limit = delay, limit
        self._channels: dict[AckChannel, _Tags] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self.frames = 0  # ack frames sent (tests, curiosity)

    def ack(self, channel: AckChannel, delivery_tag: int) -> None:
        """The delivery's effect is durable: ack it with the next batch."""
        self._channels.setdefault(channel, _Tags()).waiting[delivery_tag] = time.monotonic()
        if self.waiting >= self.limit:
            self._start_flush()
        elif self._timer is None and self._flushing is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._start_flush)

    @property
    def waiting(self) -> int:
        """Acks not sent yet (over a channel or two: cheap to count)."""
        return sum(len(tags.waiting) for tags in self._channels.values())

    def settled(self, channel: AckChannel, delivery_tag: int) -> None:
        """The delivery was nacked or rejected (that frame is already written)."""
        tags = self._channels.setdefault(channel, _Tags())
        if delivery_tag > tags.through:
            tags.settled.add(delivery_tag)

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush_while_waiting())

    async def _flush_while_waiting(self) -> None:
        try:
            await self.flush()
        finally:
            self._flushing = None
            if self.waiting and self._timer is None:  # stragglers behind a slow handler, or acks meanwhile
                self._timer = asyncio.get_running_loop().call_later(self.delay, self._start_flush)

    async def flush(self, *, everything: bool = False) -> None:
        """Send what is due (`everything`: every ack waiting, as on shutdown)."""
        now = time.monotonic()
        for channel, tags in list(self._channels.items()):
            if channel.is_closed:  # the broker delivers its unacked messages again
                del self._channels[channel]
                continue
            top, alone = plan(tags, now, self.delay, everything=everything)
            try:
                if top is not None:
                    await channel.basic_ack(top, multiple=True)
                    self.frames += 1
                for tag in alone:
                    await channel.basic_ack(tag)
                    self.frames += 1
            except Exception as exc:  # noqa: BLE001 - the channel went away mid-flush: redelivered
                log.warning("acks lost with their channel; the broker redelivers", extra={"error": repr(exc)})
                self._channels.pop(channel, None)

    async def close(self) -> None:
        """Send every ack still waiting."""
        if self._flushing is not None:  # first: its end may set the timer again
            with suppress(Exception):
                await self._flushing
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.flush(everything=True)


def channel_of(message: Any) -> AckChannel:
    """The AMQP channel a message came on (aio-pika's IncomingMessage.channel: the aiormq channel)."""
    channel: AckChannel = message.channel
    return channel
