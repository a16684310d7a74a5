"""Outbox relay against a real MongoDB-wire server and RabbitMQ: nothing committed is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from shared.events import CloudEvent
from shared.outbox import OutboxRelay
from shared.outbox_writes import (
    FAILURES,
    LEASE,
    OWNER,
    PENDING,
    commit_events,
    outbox_entries,
    outbox_fields,
    with_outbox,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PROCS = Path(__file__).resolve().parent / "_procs"


async def probe(amqp: Any, exchange: str, *routing_keys: str) -> aio_pika.abc.AbstractQueue:
    channel = await amqp.channel()
    queue = await channel.declare_queue(exclusive=True)
    for key in routing_keys:
        await queue.bind(exchange, routing_key=key)
    return queue


async def drain(queue: aio_pika.abc.AbstractQueue) -> list[CloudEvent]:
    events = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        events.append(CloudEvent.from_json(message.body))
    return events


async def all_drained(collection: Any) -> bool:
    return await collection.count_documents({PENDING: True}) == 0


async def test_relay_publishes_committed_events_in_order_and_empties_the_outbox(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    bus = await bus_factory("returns")
    queue = await probe(amqp, exchange, "return.#")
    first = [event_factory("return.created", sequence=1), event_factory("return.authorized", sequence=2)]
    await db.returns.insert_one({"_id": "r-1", "status": "authorized", **outbox_fields(first)})
    relay = OutboxRelay(bus, [db.returns], poll_interval=5)  # only wake() makes it run soon
    await relay.start()
    try:
        relay.wake()
        await wait_until(lambda: all_drained(db.returns))
        later = event_factory("return.shipped", sequence=3)
        await db.returns.update_one({"_id": "r-1"}, with_outbox({"$set": {"status": "shipped"}}, [later]))
        relay.wake()
        await wait_until(lambda: all_drained(db.returns))
    finally:
        await relay.stop()

    assert [e.id for e in await drain(queue)] == [e.id for e in [*first, later]]
    doc = await db.returns.find_one({"_id": "r-1"})
    assert doc["status"] == "shipped" and doc["outbox"] == []
    assert not {PENDING, LEASE, FAILURES} & doc.keys()


async def test_a_wake_with_an_id_publishes_that_document_and_the_sweep_finds_the_rest(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    bus = await bus_factory("returns")
    queue = await probe(amqp, exchange, "return.#", "order.#")
    relay = OutboxRelay(bus, [db.returns, db.orders], poll_interval=3600)  # one sweep, at start
    await relay.start()
    try:
        await wait_until(lambda: relay._loop.runs >= 1)  # the start-up sweep is over
        woken = event_factory("return.created")
        in_orders = event_factory("order.delivered")
        missed = event_factory("return.closed")
        await db.returns.insert_one({"_id": "r-1", **outbox_fields([woken])})
        await db.orders.insert_one({"_id": "o-1", **outbox_fields([in_orders])})
        await db.returns.insert_one({"_id": "r-2", **outbox_fields([missed])})  # committed, nobody woke for it
        relay.wake("r-1")
        relay.wake("o-1", collection=db.orders)
        await wait_until(lambda: all_drained(db.orders))

        async def r1_published() -> bool:
            return await db.returns.find_one({"_id": "r-1", PENDING: True}) is None

        await wait_until(r1_published)
        await asyncio.sleep(0.2)
        assert await db.returns.find_one({"_id": "r-2", PENDING: True}) is not None  # no sweep ran
        relay.wake()  # without an id: look for every pending document
        await wait_until(lambda: all_drained(db.returns))
    finally:
        await relay.stop()
    assert sorted(e.id for e in await drain(queue)) == sorted(e.id for e in (woken, in_orders, missed))


async def test_publisher_killed_after_commit_loses_nothing(bus_factory, db, amqp, exchange, mongodb_url, event_factory):
    queue = await probe(amqp, exchange, "return.received")
    event = event_factory("return.received")
    proc = subprocess.Popen(  # noqa: ASYNC220 - Popen returns at once; its output is read in a thread
        [
            sys.executable,
            str(PROCS / "commit_then_hang.py"),
            mongodb_url,
            db.name,
            "returns",
            "r-9",
            event.to_json().decode(),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        assert line.strip() == "committed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert await drain(queue) == []  # it died before publishing

    relay = OutboxRelay(await bus_factory("returns"), [db.returns])  # the restarted service
    assert await relay.run_once() == 1
    assert await relay.run_once() == 0
    assert [e.id for e in await drain(queue)] == [event.id]
    assert await all_drained(db.returns)


async def test_two_relays_publish_each_event_once(bus_factory, db, amqp, exchange, event_factory, wait_until):
    queue = await probe(amqp, exchange, "refund.*")
    expected = []
    for n in range(60):
        events = [event_factory("refund.issued", sequence=1), event_factory("refund.failed", sequence=2)]
        expected += [e.id for e in events]
        await db.refunds.insert_one({"_id": f"f-{n}", **outbox_fields(events)})
    relays = [
        OutboxRelay(await bus_factory(f"refunds-{i}"), [db.refunds], poll_interval=0.05, batch_size=10)
        for i in range(2)
    ]
    for relay in relays:
        await relay.start()
    try:
        await wait_until(lambda: all_drained(db.refunds), timeout=10)
    finally:
        for relay in relays:
            await relay.stop()

    counts = Counter(e.id for e in await drain(queue))
    assert set(counts) == set(expected) and set(counts.values()) == {1}


async def test_unroutable_events_stay_and_are_retried_with_backoff(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    bus = await bus_factory("metrics")
    event = event_factory("buyer.flagged")
    await db.buyers.insert_one({"_id": "b-1", **outbox_fields([event])})
    relay = OutboxRelay(bus, [db.buyers], poll_interval=0.05)

    assert await relay.run_once() == 0  # nobody is bound to buyer.flagged yet
    doc = await db.buyers.find_one({"_id": "b-1"})
    assert [e["id"] for e in doc["outbox"]] == [event.id] and doc[FAILURES] == 1
    assert await relay.run_once() == 0  # backing off: not even tried

    queue = await probe(amqp, exchange, "buyer.flagged")
    published = await wait_until(lambda: relay.run_once(), message="published after the back-off")
    assert published == 1
    assert [e.id for e in await drain(queue)] == [event.id]
    assert await all_drained(db.buyers)


# ---- the direct path: a commit hands its outbox to the relay --------------------------------


class Counted:
    """A collection that counts the commands sent through it (by method)."""

    def __init__(self, collection: Any) -> None:
        self._collection, self.calls = collection, Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._collection, name)
        if name in ("find", "find_one", "find_one_and_update", "update_one", "update_many", "insert_one"):
            self.calls[name] += 1
        return attribute


async def commit(collection: Any, doc_id: str, events: list[CloudEvent], claim: dict[str, Any]) -> list[dict]:
    """What a store does: push the events with the relay's claim, get the outbox back."""
    doc = await collection.find_one_and_update(
        {"_id": doc_id},
        with_outbox({"$set": {"status": events[-1].type}}, events, claim=claim),
        projection={"outbox": 1},
        upsert=True,
        return_document=True,
    )
    return doc["outbox"]


async def test_a_commit_handed_over_is_published_and_released_in_one_write(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    queue = await probe(amqp, exchange, "return.#")
    returns = Counted(db.returns)
    relay = OutboxRelay(await bus_factory("returns"), [returns], poll_interval=3600)
    await relay.start()
    try:
        await wait_until(lambda: relay._loop.runs >= 1)  # the start-up sweep is over
        returns.calls.clear()
        first = [event_factory("return.created", sequence=1), event_factory("return.authorized", sequence=2)]
        relay.wake("r-1", collection=returns, entries=await commit(db.returns, "r-1", first, relay.claim()))
        await wait_until(lambda: all_drained(db.returns))
    finally:
        await relay.stop()

    assert [e.id for e in await drain(queue)] == [e.id for e in first]
    assert returns.calls == {"update_one": 1}  # no lease, no read, no sweep: the release only
    doc = await db.returns.find_one({"_id": "r-1"})
    assert doc["outbox"] == [] and not {PENDING, LEASE, OWNER, FAILURES} & doc.keys()


class Gated:
    """A bus whose publishes wait at a gate: how many are in flight at once."""

    def __init__(self, bus: Any) -> None:
        self.bus, self.service = bus, bus.service
        self.gate = asyncio.Event()
        self.in_flight = self.most = 0

    async def publish(self, event: CloudEvent, *, exchange: str | None = None) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await self.gate.wait()
            await self.bus.publish(event, exchange=exchange)
        finally:
            self.in_flight -= 1


async def test_the_relay_publishes_as_many_documents_at_once_as_its_concurrency(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    queue = await probe(amqp, exchange, "return.#")
    bus = Gated(await bus_factory("returns"))
    relay = OutboxRelay(bus, [db.returns], poll_interval=3600, concurrency=4)
    await relay.start()
    events = [event_factory("return.created", sequence=1) for _ in range(10)]
    try:
        await wait_until(lambda: relay._loop.runs >= 1)
        for n, event in enumerate(events):  # ten documents committed while none can be published
            relay.wake(f"r-{n}", entries=await commit(db.returns, f"r-{n}", [event], relay.claim()))
        await wait_until(lambda: bus.in_flight == 4, message="four publishes in flight")
        bus.gate.set()
        await wait_until(lambda: all_drained(db.returns))
    finally:
        await relay.stop()

    assert bus.most == 4  # never more than the slots, and every slot used
    assert sorted(e.id for e in await drain(queue)) == sorted(e.id for e in events)


async def test_commits_racing_on_one_document_publish_in_order_once(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    queue = await probe(amqp, exchange, "return.#")
    relay = OutboxRelay(await bus_factory("returns"), [db.returns], poll_interval=3600)
    await relay.start()
    events = [event_factory("return.created", sequence=n) for n in range(1, 7)]
    try:
        await wait_until(lambda: relay._loop.runs >= 1)
        for event in events:  # each commit's wake while the previous ones are still being published
            relay.wake("r-1", entries=await commit(db.returns, "r-1", [event], relay.claim()))
        await wait_until(lambda: all_drained(db.returns))
        await asyncio.sleep(0.2)  # a duplicate would arrive by now
    finally:
        await relay.stop()

    assert [e.id for e in await drain(queue)] == [e.id for e in events]
    doc = await db.returns.find_one({"_id": "r-1"})
    assert doc["outbox"] == [] and not {PENDING, LEASE, OWNER} & doc.keys()


class HeldReleases:
    """A collection whose updates (the relay's releases) wait at a gate; reads and the tests'
    own commits (to the real collection) do not."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection
        self.gate = asyncio.Event()
        self.held = 0
        self.failures = 0  # updates to refuse once through the gate (the store went away)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._collection, name)
        if name not in ("update_one", "update_many"):
            return attribute

        async def held(*args: Any, **kwargs: Any) -> Any:
            self.held += 1
            try:
                await self.gate.wait()
            finally:
                self.held -= 1
            if self.failures:
                self.failures -= 1
                raise ConnectionError("store away")
            return await attribute(*args, **kwargs)

        return held


class Recording:
    """A bus that notes what it published, once confirmed."""

    def __init__(self, bus: Any) -> None:
        self.bus, self.service = bus, bus.service
        self.published: list[str] = []

    async def publish(self, event: CloudEvent, *, exchange: str | None = None) -> None:
        await self.bus.publish(event, exchange=exchange)
        self.published.append(event.id)


async def test_a_documents_next_events_go_out_while_its_earlier_release_is_written(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    # Under load a release waits for the store (and for the batch before it) much longer than a
    # publish takes; the next event of the document must not wait for it, once the earlier one
    # is confirmed.
    queue = await probe(amqp, exchange, "return.#")
    returns = HeldReleases(db.returns)
    bus = Recording(await bus_factory("returns"))
    relay = OutboxRelay(bus, [returns], poll_interval=3600)
    await relay.start()
    events = [event_factory(t, sequence=n) for n, t in enumerate(("return.authorized", "return.shipped"), 2)]
    events.append(event_factory("return.received", sequence=4))
    try:
        await wait_until(lambda: relay._loop.runs >= 1)
        for n, event in enumerate(events, 1):
            relay.wake("r-1", collection=returns, entries=await commit(db.returns, "r-1", [event], relay.claim()))
            await wait_until(lambda n=n: len(bus.published) == n, message=f"event {n} out, earlier releases held")
        assert returns.held == 1  # the first release is being written; the later ones queue behind it
        returns.gate.set()
        await wait_until(lambda: all_drained(db.returns))
        await wait_until(lambda: not relay._direct)
    finally:
        returns.gate.set()
        await relay.stop()

    assert bus.published == [e.id for e in events]
    assert [e.id for e in await drain(queue)] == [e.id for e in events]
    doc = await db.returns.find_one({"_id": "r-1"})
    assert doc["outbox"] == [] and not {PENDING, LEASE, OWNER} & doc.keys()


async def test_a_release_that_fails_after_the_next_event_went_out_loses_nothing(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    # The store goes away once the second event is out: the first release and what follows it
    # fail. What was not taken out of the outbox goes out again; each event went out first in order.
    queue = await probe(amqp, exchange, "return.#")
    returns = HeldReleases(db.returns)
    bus = Recording(await bus_factory("returns"))
    relay = OutboxRelay(bus, [returns], poll_interval=3600, retry_base=0.05, claim_seconds=0.2)
    await relay.start()
    first, second = event_factory("return.shipped", sequence=3), event_factory("return.received", sequence=4)
    try:
        await wait_until(lambda: relay._loop.runs >= 1)
        relay.wake("r-1", collection=returns, entries=await commit(db.returns, "r-1", [first], relay.claim()))
        await wait_until(lambda: returns.held == 1, message="the first release waits")
        relay.wake("r-1", collection=returns, entries=await commit(db.returns, "r-1", [second], relay.claim()))
        await wait_until(lambda: len(bus.published) == 2, message="the second event out, the first release held")
        returns.failures = 2
        returns.gate.set()
        await wait_until(lambda: all_drained(db.returns), timeout=10)
        await wait_until(lambda: not relay._direct)
    finally:
        returns.gate.set()
        await relay.stop()

    assert returns.failures == 0
    published = [e.id for e in await drain(queue)]
    assert set(published) == {first.id, second.id}
    assert published.index(first.id) < published.index(second.id)
    doc = await db.returns.find_one({"_id": "r-1"})
    assert doc["outbox"] == [] and not {PENDING, LEASE, OWNER} & doc.keys()


async def test_a_handover_that_starts_after_the_earlier_commits_relay_ended_does_not_republish(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    # Commit 1 hands over [e1]; commit 2 lands before e1 is released and hands over [e1, e2], but
    # its task only starts once commit 1's relay has ended (the release found e2 and pulled e1, and
    # our `_id` path sent e2 at once, under our claim). Seen as a duplicated return.shipped in the
    # two-replica e2e test.
    queue = await probe(amqp, exchange, "return.#")
    relay = OutboxRelay(await bus_factory("returns"), [db.returns], poll_interval=3600)
    await relay.start()
    first, second = event_factory("return.shipped", sequence=3), event_factory("return.received", sequence=4)
    try:
        await wait_until(lambda: relay._loop.runs >= 1)
        handed_first = await commit(db.returns, "r-1", [first], relay.claim())
        handed_second = await commit(db.returns, "r-1", [second], relay.claim())
        assert [e["id"] for e in handed_second] == [first.id, second.id]
        relay.wake("r-1", entries=handed_first)
        await wait_until(lambda: all_drained(db.returns), timeout=5, message="e2 sent without waiting for the claim")
        await wait_until(lambda: not relay._direct)
        relay.wake("r-1", entries=handed_second)
        await wait_until(lambda: not relay._direct)
    finally:
        await relay.stop()

    assert [e.id for e in await drain(queue)] == [first.id, second.id]


async def test_events_another_replica_pushed_meanwhile_are_relayed_too(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    queue = await probe(amqp, exchange, "return.#")
    relay = OutboxRelay(await bus_factory("returns"), [db.returns], poll_interval=3600)
    mine, theirs = event_factory("return.created", sequence=1), event_factory("return.closed", sequence=2)
    entries = await commit(db.returns, "r-1", [mine], relay.claim())
    # Another replica commits to the same document and dies before publishing.
    await db.returns.update_one({"_id": "r-1"}, with_outbox({"$set": {"status": "closed"}}, [theirs]))
    await relay.start()
    try:
        await wait_until(lambda: relay._loop.runs >= 1)  # the start-up sweep skips our claimed document
        relay.wake("r-1", entries=entries)
        # Their events go out at once, by our `_id` path under our claim (30 s), not after it.
        await wait_until(lambda: all_drained(db.returns), timeout=5, message="relayed by _id after the release missed")
    finally:
        await relay.stop()
    assert [e.id for e in await drain(queue)] == [mine.id, theirs.id]


async def commit_as(relay: OutboxRelay, collection: Any, doc_id: str, event: CloudEvent) -> dict[str, Any]:
    """What the returns store does: claim with the commit unless another relay holds the document,
    else commit without; answers how to wake the relay."""
    doc = await collection.find_one_and_update(
        {"_id": doc_id, **relay.claimable()},
        with_outbox({"$set": {"status": event.type}}, [event], claim=relay.claim()),
        projection={"outbox": 1},
        return_document=True,
    )
    if doc is not None:
        return {"entries": doc["outbox"]}
    await collection.update_one({"_id": doc_id}, with_outbox({"$set": {"status": event.type}}, [event]))
    return {}


async def test_a_replica_committing_while_another_publishes_the_same_document_waits_for_it(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    queue = await probe(amqp, exchange, "return.#")
    first, second = [OutboxRelay(await bus_factory(f"returns-{n}"), [db.returns], poll_interval=3600) for n in (1, 2)]
    await db.returns.insert_one({"_id": "r-1", "outbox": []})
    for relay in (first, second):
        await relay.start()
    created, authorized = event_factory("return.created", sequence=1), event_factory("return.authorized", sequence=2)
    try:
        await wait_until(lambda: first._loop.runs >= 1 and second._loop.runs >= 1)
        handed = await commit_as(first, db.returns, "r-1", created)
        assert "entries" in handed
        woken = await commit_as(second, db.returns, "r-1", authorized)  # the first one holds it
        assert woken == {}
        second.wake("r-1", **woken)
        first.wake("r-1", **handed)
        await wait_until(lambda: all_drained(db.returns), timeout=5)
        await asyncio.sleep(0.2)  # a duplicate would arrive by now
    finally:
        for relay in (first, second):
            await relay.stop()
    assert [e.id for e in await drain(queue)] == [created.id, authorized.id]


async def test_a_failed_direct_publish_is_retried_in_process_with_backoff(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    relay = OutboxRelay(await bus_factory("metrics"), [db.buyers], poll_interval=3600, retry_base=0.2)
    await relay.start()
    event = event_factory("buyer.flagged")
    try:
        await wait_until(lambda: relay._loop.runs >= 1)
        relay.wake("b-1", collection=db.buyers, entries=await commit(db.buyers, "b-1", [event], relay.claim()))

        async def backing_off() -> Any:
            return await db.buyers.find_one({"_id": "b-1", FAILURES: {"$gte": 1}})

        doc = await wait_until(backing_off, message="the failure recorded")  # nobody is bound yet
        assert doc[LEASE] is not None and OWNER not in doc  # other replicas keep away until the retry
        queue = await probe(amqp, exchange, "buyer.flagged")
        await wait_until(lambda: all_drained(db.buyers), timeout=10, message="retried without a sweep")
    finally:
        await relay.stop()
    assert [e.id for e in await drain(queue)] == [event.id]


async def test_a_claimed_document_is_left_alone_by_another_replicas_sweep(
    bus_factory, db, amqp, exchange, event_factory
):
    queue = await probe(amqp, exchange, "return.#")
    committing = OutboxRelay(await bus_factory("returns"), [db.returns])
    other = OutboxRelay(await bus_factory("returns-2"), [db.returns])
    event = event_factory("return.created")
    entries = await commit(db.returns, "r-1", [event], committing.claim())

    assert await other.run_once() == 0  # its sweep: claimed by the committing replica
    committing.wake("r-1", entries=entries)
    await asyncio.wait_for(asyncio.gather(*committing._direct), 5)
    assert await other.run_once() == 0
    assert [e.id for e in await drain(queue)] == [event.id]
    assert await all_drained(db.returns)


# ---- commit_events: what the stores of refunds, notifications and metrics commit with ------------


async def test_commit_events_claims_a_free_document_and_hands_its_outbox_over(db, bus_factory, event_factory):
    relay = OutboxRelay(await bus_factory("refunds"), [db.refunds])
    await db.refunds.insert_one({"_id": "f-1", "version": 1, "outbox": []})
    issued = event_factory("refund.issued", sequence=2)
    update = {"$set": {"version": 2}}

    handover = await commit_events(db.refunds, {"_id": "f-1", "version": 1}, update, [issued], relay)
    assert handover == {"entries": outbox_entries([issued])}
    doc = await db.refunds.find_one({"_id": "f-1"})
    assert (doc["version"], doc[OWNER], doc[PENDING]) == (2, relay.owner, True)
    # A stale version commits nothing; a change without events claims nothing and wakes nothing.
    assert await commit_events(db.refunds, {"_id": "f-1", "version": 1}, update, [issued], relay) is None
    await db.refunds.update_one({"_id": "f-1"}, {"$unset": {OWNER: "", LEASE: ""}})
    assert await commit_events(db.refunds, {"_id": "f-1", "version": 2}, {"$set": {"version": 3}}, [], relay) == {
        "entries": []
    }
    assert OWNER not in await db.refunds.find_one({"_id": "f-1"})
    with pytest.raises(ValueError, match=r"\$or"):
        await commit_events(db.refunds, {"_id": "f-1", "$or": [{}]}, update, [issued], relay)


async def test_commit_events_while_another_replicas_relay_holds_the_document_waits_for_it(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    """Two replicas commit to one refund in turn: the second finds the first's relay publishing it,
    commits without the claim (its claim untouched) and wakes by id; each event goes out once, in order."""
    queue = await probe(amqp, exchange, "refund.#")
    refunds = Counted(db.refunds)
    first, second = [OutboxRelay(await bus_factory(f"refunds-{n}"), [db.refunds], poll_interval=3600) for n in (1, 2)]
    await db.refunds.insert_one({"_id": "f-1", "version": 1, "outbox": []})
    for relay in (first, second):
        await relay.start()
    failed, issued = event_factory("refund.failed", sequence=2), event_factory("refund.issued", sequence=3)
    try:
        await wait_until(lambda: first._loop.runs >= 1 and second._loop.runs >= 1)
        handed = await commit_events(refunds, {"_id": "f-1", "version": 1}, {"$set": {"version": 2}}, [failed], first)
        refunds.calls.clear()
        woken = await commit_events(refunds, {"_id": "f-1", "version": 2}, {"$set": {"version": 3}}, [issued], second)
        assert woken == {}
        assert refunds.calls == {"find_one_and_update": 1, "update_one": 1}  # claiming, then without
        assert (await db.refunds.find_one({"_id": "f-1"}))[OWNER] == first.owner
        second.wake("f-1", **woken)
        first.wake("f-1", **handed)
        await wait_until(lambda: all_drained(db.refunds), timeout=5)
        await asyncio.sleep(0.2)  # a duplicate would arrive by now
    finally:
        for relay in (first, second):
            await relay.stop()
    assert [e.id for e in await drain(queue)] == [failed.id, issued.id]
    assert (await db.refunds.find_one({"_id": "f-1"}))["version"] == 3
