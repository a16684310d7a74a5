"""A lock every replica shares: an exclusive queue on the broker, held by one connection at a time.

Declaring an exclusive queue that another connection holds fails with RESOURCE_LOCKED; the broker
deletes the queue when its connection closes, so a replica that dies holding the lock frees it (no
lease to wait out). Queues are exclusive per connection, not per task: callers in one process
serialise themselves (WebhookQueue's asyncio.Lock) before taking it. A holder whose delete failed
(the broker or channel hiccuped) would keep the lock as long as its connection lives, so the queue
also expires `expires_ms` after its last declaration (`x-expires`): far longer than any section
held (milliseconds), and the longest any replica then waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from aio_pika.abc import AbstractRobustConnection
from aiormq.exceptions import ChannelLockedResource


class BrokerMutex:
    def __init__(
        self,
        connection: Callable[[], AbstractRobustConnection],
        name: str,
        *,
        first_wait_s: float = 0.02,
        expires_ms: int = 30_000,
    ) -> None:
        self.connection, self.name, self.first_wait_s = connection, name, first_wait_s  # the connection once open
        self.expires_ms = expires_ms
        self.refused = 0  # attempts that found the lock held (tests wait on it)

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        wait = self.first_wait_s
        while True:
            channel = await self.connection().channel(publisher_confirms=False)
            try:
                await channel.declare_queue(
                    self.name, exclusive=True, robust=False, arguments={"x-expires": self.expires_ms}
                )
                break
            except ChannelLockedResource:  # another replica holds it: its section takes milliseconds
                self.refused += 1
                with suppress(Exception):
                    await channel.close()
                await asyncio.sleep(wait)
                wait = min(wait * 2, 1.0)
        try:
            yield
        finally:
            with suppress(Exception):  # a failed delete: the queue goes when the connection does
                await channel.queue_delete(self.name)
            with suppress(Exception):
                await channel.close()
