"""EventBus against a real RabbitMQ (and a real MongoDB-wire server for the inbox)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import BaseModel

from shared.acks import AckBatcher
from shared.bus import CONTENT_TYPE, EventBus
from shared.clock import FixedClock
from shared.deadletters import dead_letter_router, list_dead, replay_dead
from shared.events import CloudEvent
from shared.observability import add_readiness_check
from shared.queues import Unroutable
from shared.service import create_service_app
from shared.settings import CommonSettings
from tests.integration.proxy import FlakyProxy

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


async def probe(amqp: Any, exchange: str, *routing_keys: str) -> aio_pika.abc.AbstractQueue:
    """An exclusive queue bound to `routing_keys`; it disappears with the test's connection."""
    channel = await amqp.channel()
    queue = await channel.declare_queue(exclusive=True)
    for key in routing_keys:
        await queue.bind(exchange, routing_key=key)
    return queue


async def drain(queue: aio_pika.abc.AbstractQueue) -> list[aio_pika.abc.AbstractIncomingMessage]:
    messages = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        messages.append(message)
    return messages


class Recorder:
    """A handler that remembers what it got and fails while `failing` is set."""

    def __init__(self, failing: bool = False) -> None:
        self.events: list[CloudEvent] = []
        self.calls = 0
        self.failing = failing

    async def __call__(self, event: CloudEvent) -> None:
        self.calls += 1
        if self.failing:
            raise RuntimeError(f"gateway timeout for {event.id}")
        self.events.append(event)


async def test_confirmed_event_reaches_every_bound_queue(bus_factory, db, amqp, exchange, event_factory, wait_until):
    returns, refunds = Recorder(), Recorder()
    for service, handler in (("returns", returns), ("refunds", refunds)):
        bus = await bus_factory(service, inbox=db[f"inbox_{service}"])
        bus.subscribe("return.received", handler)
        await bus.start()
    raw = await probe(amqp, exchange, "return.received")
    publisher = await bus_factory("publisher")

    event = event_factory("return.received")
    await publisher.publish(event)

    await wait_until(lambda: returns.events and refunds.events, message="both services got the event")
    assert returns.events == [event] and refunds.events == [event]
    [message] = await wait_until(lambda: drain(raw))
    assert (message.message_id, message.type, message.content_type) == (event.id, event.type, CONTENT_TYPE)
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert CloudEvent.from_json(message.body) == event
    assert await db.inbox_returns.find_one({"_id": event.id}) is not None


async def test_unroutable_publish_raises(bus_factory, event_factory):
    publisher = await bus_factory("publisher")
    event = event_factory("return.expired")
    with pytest.raises(Unroutable) as raised:
        await publisher.publish(event)
    assert raised.value.event_id == event.id


async def test_failing_handler_is_retried_parked_listed_and_replayed(bus_factory, db, event_factory, wait_until):
    handler = Recorder(failing=True)
    bus = await bus_factory("refunds", inbox=db.inbox, retry_delays_ms=[50, 100])
    bus.subscribe("return.received", handler)
    await bus.start()
    event = event_factory("return.received")
    await bus.publish(event)

    [dead] = await wait_until(lambda: list_dead(bus), message="the event is parked")
    assert handler.calls == 3  # first try and one retry per delay
    assert (dead.id, dead.type, dead.attempts, dead.original_routing_key) == (event.id, event.type, 3, event.type)
    assert "RuntimeError: gateway timeout" in dead.error and dead.failed_at is not None
    assert CloudEvent.from_json(dead.body) == event
    assert [d.id for d in await list_dead(bus)] == [event.id]  # listing doesn't consume

    # Operators go through the admin API: only agents get in.
    app = FastAPI()
    app.include_router(dead_letter_router(lambda: bus, lambda: "agent-7"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        listed = (await client.get("/v1/admin/dead-letters")).json()
        assert [item["id"] for item in listed["items"]] == [event.id]
        handler.failing = False
        replayed = await client.post("/v1/admin/dead-letters/replay", json={"ids": [event.id]})
    assert replayed.json() == {
        "replayed": 1,
        "complete": True,
        "items": [{"id": event.id, "type": event.type, "outcome": "replayed"}],
    }

    await wait_until(lambda: handler.events, message="the replayed event is handled")
    assert handler.events == [event] and handler.calls == 4
    assert await list_dead(bus) == []
    assert (await replay_dead(bus)).model_dump() == {"replayed": 0, "complete": True, "items": []}


async def test_unparseable_and_unhandled_messages_are_parked_at_once(
    bus_factory, db, amqp, exchange, event_factory, wait_until
):
    handler = Recorder()
    bus = await bus_factory("metrics", inbox=db.inbox)
    bus.subscribe("return.closed", handler)
    await bus.start()
    channel = await amqp.channel()
    target = await channel.get_exchange(exchange)
    await target.publish(aio_pika.Message(b"{not json", message_id="garbage-1"), routing_key="return.closed")
    # A well-formed event whose type the routing key doesn't match and no handler takes.
    stray = event_factory("return.expired")
    await target.publish(aio_pika.Message(stray.to_json(), message_id=stray.id), routing_key="return.closed")

    dead = await wait_until(lambda: _when_len(list_dead(bus), 2), message="both parked")
    by_id = {d.id: d for d in dead}
    assert by_id["garbage-1"].attempts == 0 and by_id["garbage-1"].error.startswith("unparseable")
    assert by_id[stray.id].error == "no handler for type 'return.expired'"
    assert handler.calls == 0

    # The CLI lists and replays the same queue; the garbage comes straight back.
    env = {**os.environ, "AMQP_URL": bus.amqp_url, "QUEUE_PREFIX": bus.names.base.removesuffix("metrics")}
    cli = [sys.executable, "-m", "shared.deadletters"]
    listed = await asyncio.to_thread(
        subprocess.run,
        [*cli, "list", "--service", "metrics"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert {json.loads(line)["id"] for line in listed.stdout.splitlines()} == {"garbage-1", stray.id}
    replayed = await asyncio.to_thread(
        subprocess.run,
        [*cli, "replay", "--service", "metrics", "--id", "garbage-1"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert json.loads(replayed.stdout) == {
        "replayed": 1,
        "complete": True,
        "items": [{"id": "garbage-1", "type": None, "outcome": "replayed"}],
    }
    await wait_until(lambda: _when_len(list_dead(bus), 2), message="garbage parked again")


async def _when_len(items: Any, n: int) -> Any:
    items = await items
    return items if len(items) == n else None


async def test_duplicate_delivery_has_one_effect(bus_factory, db, event_factory, wait_until, caplog):
    caplog.set_level(logging.INFO, logger="shared.bus")

    async def credit(event: CloudEvent) -> None:
        await db.ledger.update_one({"_id": event.subject}, {"$inc": {"credits": 1}}, upsert=True)

    bus = await bus_factory("refunds", inbox=db.inbox)
    bus.subscribe("return.received", credit)
    await bus.start()
    event = event_factory("return.received", subject="r-dup")
    await asyncio.gather(bus.publish(event), bus.publish(event))  # same prefetch window
    await bus.publish(event)  # and once more later

    def skipped() -> int:
        return sum(
            1
            for r in caplog.records
            if r.getMessage() == "duplicate skipped" and getattr(r, "event_id", None) == event.id
        )

    await wait_until(lambda: skipped() == 2, message="two copies skipped")
    assert await db.ledger.find_one({"_id": "r-dup"}) == {"_id": "r-dup", "credits": 1}
    assert await db.inbox.count_documents({"_id": event.id}) == 1


async def test_publish_and_consume_resume_after_a_connection_drop(
    amqp_url, bus_factory, db, amqp, exchange, event_factory, wait_until
):
    proxy = FlakyProxy.for_url(amqp_url)
    proxied = await proxy.url(amqp_url)
    try:
        handler = Recorder()
        bus = await bus_factory("returns", inbox=db.inbox, amqp_url=proxied)
        bus.subscribe("refund.issued", handler)
        await bus.start()
        await bus.publish(event_factory("refund.issued"))
        await wait_until(lambda: len(handler.events) == 1)

        reconnects: list[Any] = []
        bus.connection.reconnect_callbacks.add(lambda *_: reconnects.append(1))
        proxy.cut()
        after = event_factory("refund.issued")
        await wait_until(lambda: _publishes(bus, after), timeout=15, message="publishing works again")
        await wait_until(lambda: after in handler.events, timeout=15, message="consuming resumed")
        assert reconnects  # it really went through a reconnect
        await bus.close()
    finally:
        await proxy.close()


async def _publishes(bus: EventBus, event: CloudEvent) -> bool:
    try:
        await asyncio.wait_for(bus.publish(event), 2)
        return True
    except Exception:  # noqa: BLE001 - still reconnecting
        return False


async def test_concurrent_confirmed_publishes_each_arrive_once(bus_factory, amqp, exchange, event_factory):
    """3,000 publishes at once on one channel: every one confirmed and routed, each id once. The
    rate is printed for information; speed is the bench's business (bench/README.md), not a test's."""
    publisher = await bus_factory("publisher")
    queue = await probe(amqp, exchange, "buyer.flagged")
    events = [event_factory("buyer.flagged") for _ in range(3000)]
    started = time.perf_counter()
    await asyncio.gather(*(publisher.publish(e) for e in events))
    print(f"\nconfirmed publish rate: {len(events) / (time.perf_counter() - started):,.0f} msg/s")
    received = [m.message_id for m in await drain(queue)]
    assert sorted(received) == sorted(e.id for e in events)


async def test_the_inbox_forgets_event_ids_older_than_its_retention(bus_factory, db):
    clock = FixedClock(datetime(2026, 3, 2, tzinfo=UTC))
    bus = await bus_factory("refunds", inbox=db["inbox"], clock=clock, inbox_retention=timedelta(days=14))
    await db["inbox"].insert_many(
        [
            {"_id": "old", "processed_at": clock.now() - timedelta(days=15)},
            {"_id": "recent", "processed_at": clock.now() - timedelta(days=13)},
        ]
    )
    assert await bus.purge_inbox() == 1
    assert [doc["_id"] async for doc in db["inbox"].find({})] == ["recent"]


class Refund(BaseModel):
    amount: int


async def test_data_that_fails_the_handlers_model_is_parked_at_once(bus_factory, db, event_factory, wait_until):
    calls = []

    async def handler(event: CloudEvent) -> None:
        calls.append(event.id)
        Refund.model_validate(event.data)

    bus = await bus_factory("refunds", inbox=db.inbox, retry_delays_ms=[60_000])  # a retry would take a minute
    bus.subscribe("return.received", handler)
    await bus.start()
    event = event_factory("return.received", data={"amount": "lots"})
    await bus.publish(event)

    [dead] = await wait_until(lambda: list_dead(bus), message="parked without waiting for a retry")
    assert (dead.id, dead.attempts, len(calls)) == (event.id, 1, 1)
    assert dead.error.startswith("invalid event: ValidationError") and "amount" in dead.error


@pytest.mark.parametrize("forged, runs", [(-5, 3), ("two", 3), (10**9, 1)])
async def test_a_forged_attempt_header_neither_loops_nor_hides_the_error(
    bus_factory, db, amqp, exchange, event_factory, wait_until, forged, runs
):
    handler = Recorder(failing=True)
    bus = await bus_factory("refunds", inbox=db.inbox, retry_delays_ms=[50, 100])
    bus.subscribe("return.received", handler)
    await bus.start()
    event = event_factory("return.received")
    channel = await amqp.channel()
    await (await channel.get_exchange(exchange)).publish(
        aio_pika.Message(event.to_json(), message_id=event.id, type=event.type, headers={"x-attempt": forged}),
        routing_key=event.type,
    )

    [dead] = await wait_until(lambda: list_dead(bus), timeout=10, message="parked by the bus, not the broker")
    assert dead.id == event.id and dead.attempts == 3 and handler.calls == runs
    assert "RuntimeError: gateway timeout" in dead.error


async def test_readiness_means_connected_now(amqp_url, bus_factory, db, wait_until):
    proxy = FlakyProxy.for_url(amqp_url)
    proxied = await proxy.url(amqp_url)
    try:
        bus = await bus_factory("returns", inbox=db.inbox, amqp_url=proxied)
        bus.subscribe("refund.issued", Recorder())

        @asynccontextmanager
        async def wiring(app):
            await bus.start()
            app.state.bus = bus
            # What the services registered themselves: true while the robust connection reconnects.
            add_readiness_check(app, "amqp", lambda: not bus.connection.is_closed)
            yield

        settings = CommonSettings(service_name="returns", jwt_secret="readiness-" + "r" * 54)
        app = create_service_app(settings, title="t", lifespan=wiring, configure_logs=False)
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(transport=httpx.ASGITransport(manager.app), base_url="http://t") as client,
        ):

            async def amqp_check() -> str:
                return (await client.get("/readyz")).json()["checks"]["amqp"]

            assert bus.is_connected() and await amqp_check() == "ok"
            proxy.refuse()  # the broker goes away
            await wait_until(lambda: not bus.is_connected(), message="the bus sees the broker gone")
            assert not bus.connection.is_closed  # still "open" to the robust connection: it reconnects
            response = await client.get("/readyz")
            assert response.status_code == 503 and response.json()["checks"]["amqp"] == "failing"
            proxy.resume()
            await wait_until(lambda: _eq(amqp_check(), "ok"), timeout=15, message="ready again once reconnected")
            assert bus.is_connected()
    finally:
        await proxy.close()


async def _eq(value: Any, expected: Any) -> bool:
    return await value == expected


async def batching(bus_factory: Any, handler: Any, ack_batch_ms: int) -> tuple[EventBus, AckBatcher]:
    """A started bus consuming refund.issued with `handler`, and its batcher of acks."""
    bus = await bus_factory("returns", ack_batch_ms=ack_batch_ms)
    bus.subscribe("refund.issued", handler)
    await bus.start()
    assert bus._acks is not None
    return bus, bus._acks


async def left_after_close(amqp: Any, queue: str, wait_until: Any) -> int:
    """The queue's messages once the broker has let go of the closed connection's consumer.

    The broker puts a dead consumer's unacked deliveries back when its channel goes down, a moment
    after the client's close returns (a count read right after the close saw 0 of 1). The queue drops the
    consumer and requeues its deliveries in one step (the queue process handling the channel going
    down), so once no consumer is left the count is final.
    """

    async def settled() -> tuple[int] | None:  # a tuple: a count of 0 is an answer too
        async with amqp.channel() as channel:
            declared = (await channel.declare_queue(queue, passive=True)).declaration_result
        return None if declared.consumer_count else (declared.message_count or 0,)

    (count,) = await wait_until(settled, message=f"the closed consumer gone from {queue}")
    return count


async def test_acks_sent_in_runs_settle_every_delivery_before_close(bus_factory, amqp, event_factory, wait_until):
    handler = Recorder()
    bus, acks = await batching(bus_factory, handler, 200)  # long enough for acks to wait for each other
    events = [event_factory("refund.issued") for _ in range(40)]
    await asyncio.gather(*(bus.publish(event) for event in events))
    await wait_until(lambda: len(handler.events) == 40, message="every event handled")
    await bus.close()
    assert 0 < acks.frames < 40 and acks.waiting == 0  # in runs, and none left behind
    # Had an ack been lost, closing the connection would have put its message back in the queue.
    assert await left_after_close(amqp, bus.names.main, wait_until) == 0


async def test_a_run_of_acks_never_settles_a_delivery_still_being_handled(bus_factory, amqp, event_factory, wait_until):
    """The first delivery's handler is held while the nine after it finish and are acked (alone,
    once they waited). Then the process dies: only the held one goes back to the queue. Had an ack
    with `multiple` covered it, it would be lost."""
    held, release = event_factory("refund.issued"), asyncio.Event()
    handler = Recorder()
    started = asyncio.Event()

    async def handle(event: CloudEvent) -> None:
        if event.id == held.id:
            started.set()
            await release.wait()
        await handler(event)

    bus, acks = await batching(bus_factory, handle, 50)
    await bus.publish(held)
    await started.wait()
    later = [event_factory("refund.issued") for _ in range(9)]
    await asyncio.gather(*(bus.publish(event) for event in later))
    await wait_until(lambda: len(handler.events) == 9, message="the nine after it handled")
    # Each of the nine alone: the held first delivery stops every run (a handler records its event
    # just before the bus acks it, so count the frames, not the events).
    await wait_until(lambda: acks.frames == 9 and acks.waiting == 0, message="their acks sent")

    assert bus._connection is not None
    await bus._connection.close()  # the process dies: its unacked deliveries go back to the queue
    release.set()
    assert await left_after_close(amqp, bus.names.main, wait_until) == 1
    async with amqp.channel() as channel:
        queue = await channel.declare_queue(bus.names.main, passive=True)
        back = await queue.get(no_ack=True)
        assert back.message_id == held.id
