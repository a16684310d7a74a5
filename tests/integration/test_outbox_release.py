"""The relay's direct-path releases written together (shared/outbox_release.py), on the real server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.outbox import OutboxRelay
from shared.outbox_release import ReleaseBatcher
from shared.outbox_writes import FAILURES, LEASE, OWNER, PENDING
from tests.integration.test_outbox import Counted, all_drained, commit, drain, probe

pytestmark = pytest.mark.integration


def pending(doc_id: str, *event_ids: str) -> dict[str, Any]:
    return {
        "_id": doc_id,
        "outbox": [{"id": e, "type": "return.created", "envelope": {}} for e in event_ids],
        PENDING: True,
        LEASE: 1,
        OWNER: "me",
    }


async def test_releases_waiting_together_are_one_batch_and_say_which_documents_are_empty(db):
    await db.returns.insert_many([pending("a", "a1"), pending("b", "b1", "b2"), pending("c", "c1", "c2")])
    batcher = ReleaseBatcher(db.returns)
    first = batcher.release("a", ["a1"])  # queued at once and written alone: one conditional update
    await asyncio.sleep(0)
    # while it is written, b (published all) and c (a newer event c2 arrived after publishing c1) wait
    answers = await asyncio.gather(first, batcher.release("b", ["b1", "b2"]), batcher.release("c", ["c1"]))

    assert answers == [True, True, False]
    assert (batcher.group.batches, batcher.group.items) == (2, 3)
    docs = {doc["_id"]: doc async for doc in db.returns.find({})}
    for emptied in ("a", "b"):
        assert docs[emptied]["outbox"] == [] and not {PENDING, LEASE, OWNER, FAILURES} & docs[emptied].keys()
    # c lost only what was published; it stays pending (and claimed) for the relay's `_id` path
    assert [e["id"] for e in docs["c"]["outbox"]] == ["c2"] and docs["c"][PENDING] is True


async def test_a_release_alone_that_finds_newer_events_takes_out_only_the_published_ones(db):
    await db.returns.insert_one(pending("d", "d1", "d2"))
    batcher = ReleaseBatcher(db.returns)
    assert await batcher.release("d", ["d1"]) is False
    doc = await db.returns.find_one({"_id": "d"})
    assert [e["id"] for e in doc["outbox"]] == ["d2"] and doc[PENDING] is True
    assert await batcher.release("d", ["d2"]) is True
    doc = await db.returns.find_one({"_id": "d"})
    assert doc["outbox"] == [] and not {PENDING, LEASE, OWNER, FAILURES} & doc.keys()


async def test_a_failed_batch_write_fails_each_release_in_it(db):
    class Broken:
        async def update_one(self, *_: Any, **__: Any) -> Any:
            raise ConnectionError("store away")

        update_many = update_one

    batcher = ReleaseBatcher(Broken())
    results = await asyncio.gather(batcher.release("a", ["a1"]), batcher.release("b", ["b1"]), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    assert batcher.group.writer is None  # and the next release starts a new writer
    with pytest.raises(ConnectionError):
        await batcher.release("c", ["c1"])


class ConfirmedTogether:
    """A bus whose publishes all answer at once, when the last of `count` is confirmed: the
    releases then arrive in one burst, whatever the broker's timing (the batching is under test)."""

    def __init__(self, bus: Any, count: int) -> None:
        self.bus, self.service, self.count = bus, bus.service, count
        self.confirmed = 0
        self.all = asyncio.Event()

    async def publish(self, event: Any, *, exchange: str | None = None) -> None:
        await self.bus.publish(event, exchange=exchange)
        self.confirmed += 1
        if self.confirmed == self.count:
            self.all.set()
        await self.all.wait()


async def test_many_commits_at_once_are_released_in_a_few_writes(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    queue = await probe(amqp, exchange, "return.#")
    returns = Counted(db.returns)
    bus = ConfirmedTogether(await bus_factory("returns"), 20)
    relay = OutboxRelay(bus, [returns], poll_interval=3600, concurrency=20)
    await relay.start()
    events = {f"r-{n}": [event_factory("return.created", sequence=1)] for n in range(20)}
    try:
        await wait_until(lambda: relay._loop.runs >= 1)  # the start-up sweep is over
        handed = {doc_id: await commit(db.returns, doc_id, evs, relay.claim()) for doc_id, evs in events.items()}
        returns.calls.clear()
        for doc_id, entries in handed.items():
            relay.wake(doc_id, collection=returns, entries=entries)
        await wait_until(lambda: all_drained(db.returns))
    finally:
        await relay.stop()

    published = [e.id for e in await drain(queue)]
    assert sorted(published) == sorted(e.id for evs in events.values() for e in evs)
    # 20 documents released at once: one batch (pull, then clear), where one by one is 20 writes.
    assert returns.calls == {"update_many": 2}, returns.calls
    async for doc in db.returns.find({}):
        assert doc["outbox"] == [] and not {PENDING, LEASE, OWNER, FAILURES} & doc.keys()
