"""The relay's `_id` path (shared/outbox.py) when the outbox changes while it publishes: what is left goes out
at once, and nothing is dropped. (A late handover after it: test_outbox.py.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from shared.events import CloudEvent
from shared.outbox import OutboxRelay
from shared.outbox_writes import OWNER, outbox_fields, with_outbox
from tests.integration.test_outbox import all_drained, drain, probe

pytestmark = pytest.mark.integration


class Meddling:
    """A bus that, while publishing the event `during`, lets `meddle()` change the document first
    (another replica's commit, a release of another task)."""

    def __init__(self, bus: Any, during: CloudEvent, meddle: Callable[[], Awaitable[Any]]) -> None:
        self.bus, self.service, self.during, self.meddle = bus, bus.service, during, meddle

    async def publish(self, event: CloudEvent, *, exchange: str | None = None) -> None:
        if event.id == self.during.id:
            await self.meddle()
        await self.bus.publish(event, exchange=exchange)


async def test_events_pushed_while_the_id_path_publishes_go_out_at_once_not_at_the_next_sweep(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    queue = await probe(amqp, exchange, "return.#")
    mine, theirs = event_factory("return.created", sequence=1), event_factory("return.closed", sequence=2)

    async def their_commit() -> None:  # another replica, without the claim: this relay holds the document
        await db.returns.update_one({"_id": "r-1"}, with_outbox({"$set": {"status": "closed"}}, [theirs]))

    relay = OutboxRelay(Meddling(await bus_factory("returns"), mine, their_commit), [db.returns], poll_interval=3600)
    await relay.start()
    try:
        await wait_until(lambda: relay._loop.runs >= 1)  # the start-up sweep is over; no other comes
        await db.returns.insert_one({"_id": "r-1", **outbox_fields([mine])})  # committed without a claim
        relay.wake("r-1")
        await wait_until(lambda: all_drained(db.returns), timeout=5, message="theirs relayed by this relay")
    finally:
        await relay.stop()

    assert [e.id for e in await drain(queue)] == [mine.id, theirs.id]
    assert OWNER not in await db.returns.find_one({"_id": "r-1"})


async def test_the_id_path_never_empties_an_outbox_that_changed_under_it_to_the_same_size(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    # The `_id` path publishes [e1, e2]; meanwhile e1 is pulled (a release of one of our direct
    # tasks) and e3 committed: the outbox is [e2, e3], as long as what was published.
    queue = await probe(amqp, exchange, "return.#")
    e1, e2, e3 = (event_factory("return.created", sequence=n) for n in (1, 2, 3))

    async def release_and_commit() -> None:
        await db.returns.update_one({"_id": "r-1"}, {"$pull": {"outbox": {"id": e1.id}}})
        await db.returns.update_one({"_id": "r-1"}, with_outbox({"$set": {"status": "closed"}}, [e3]))

    relay = OutboxRelay(
        Meddling(await bus_factory("returns"), e2, release_and_commit), [db.returns], poll_interval=3600
    )
    await relay.start()
    try:
        await wait_until(lambda: relay._loop.runs >= 1)
        await db.returns.insert_one({"_id": "r-1", **outbox_fields([e1, e2])})
        relay.wake("r-1")
        await wait_until(lambda: all_drained(db.returns), timeout=5, message="e3 relayed, not dropped")
    finally:
        await relay.stop()

    assert [e.id for e in await drain(queue)] == [e1.id, e2.id, e3.id]
