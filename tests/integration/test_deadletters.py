"""Dead-letter replay against a real RabbitMQ: a snapshot, once per message per call, bounded,
per-message outcomes, and a clean stop on shutdown (bus closing, SIGTERM for the CLI)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from fastapi import FastAPI

from shared.auth import Principal, Role
from shared.bus import EventBus
from shared.deadletters import dead_letter_router, list_dead, replay_dead
from shared.events import CloudEvent

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


class AlwaysFails:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, event: CloudEvent) -> None:
        self.calls += 1
        raise RuntimeError("still broken")


async def count(amqp: Any, queue: str) -> int:
    async with amqp.channel() as channel:
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


async def bare_queues(amqp: Any, bus: EventBus) -> None:
    """The bus's main and dead queues with no consumer, so replayed messages stay where they land."""
    async with amqp.channel() as channel:
        for name in (bus.names.main, bus.names.dead):
            await channel.declare_queue(name, durable=True)


async def park(amqp: Any, bus: EventBus, events: list[CloudEvent]) -> None:
    async with amqp.channel() as channel:
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(
                        e.to_json(), message_id=e.id, type=e.type, headers={"x-error": "boom", "x-attempts": 3}
                    ),
                    routing_key=bus.names.dead,
                )
                for e in events
            )
        )


async def test_a_replayed_message_that_fails_again_is_replayed_once_and_the_call_answers(
    bus_factory, db, event_factory, wait_until, caplog
):
    caplog.set_level(logging.INFO, logger="shared.deadletters")
    handler = AlwaysFails()
    bus = await bus_factory("refunds", inbox=db.inbox, retry_delays_ms=[])  # parked on the first failure
    bus.subscribe("return.received", handler)
    await bus.start()
    event = event_factory("return.received")
    await bus.publish(event)
    await wait_until(lambda: list_dead(bus), message="the event is parked")

    agent = Principal(subject="a-7", role=Role.AGENT, claims={"sub": "a-7", "email": "jane@example.com"})
    app = FastAPI()
    app.include_router(dead_letter_router(lambda: bus, lambda: agent))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await asyncio.wait_for(client.post("/v1/admin/dead-letters/replay", json={}), 15)
    assert response.status_code == 200
    assert response.json() == {
        "replayed": 1,
        "complete": True,
        "items": [{"id": event.id, "type": event.type, "outcome": "replayed"}],
    }

    # It failed again and is parked once more: one copy, not one per lap.
    await wait_until(lambda: handler.calls == 2, message="the replayed copy ran")
    [again] = await wait_until(lambda: list_dead(bus), message="parked again")
    assert again.id == event.id and handler.calls == 2

    [record] = [r for r in caplog.records if r.getMessage() == "dead letters replayed by agent"]
    assert (record.role, record.subject, record.replayed) == ("agent", "a-7", 1)
    assert "jane" not in json.dumps({k: str(v) for k, v in vars(record).items()})


async def test_replay_reports_each_message_and_removes_second_copies(bus_factory, amqp, event_factory, wait_until):
    bus = await bus_factory("returns")
    await bare_queues(amqp, bus)
    wanted, other = event_factory("refund.issued"), event_factory("refund.failed")
    await park(amqp, bus, [wanted, other, wanted])

    result = await replay_dead(bus, [wanted.id, "no-such-id"])
    assert result.model_dump() == {
        "replayed": 1,
        "complete": True,
        "items": [
            {"id": wanted.id, "type": wanted.type, "outcome": "replayed"},
            {"id": wanted.id, "type": wanted.type, "outcome": "duplicate"},
            {"id": "no-such-id", "type": None, "outcome": "not_found"},
        ],
    }
    assert await wait_until(lambda: count(amqp, bus.names.main)) == 1
    assert [d.id for d in await list_dead(bus)] == [other.id]  # not asked for: left in place


async def test_a_copy_the_broker_refuses_is_reported_and_stays_parked(bus_factory, amqp, event_factory):
    bus = await bus_factory("refunds")
    async with amqp.channel() as channel:  # a dead queue, but no inbox to send back to
        await channel.declare_queue(bus.names.dead, durable=True)
    event = event_factory("return.received")
    await park(amqp, bus, [event])

    result = await replay_dead(bus, [event.id])
    assert result.model_dump() == {
        "replayed": 0,
        "complete": True,
        "items": [{"id": event.id, "type": event.type, "outcome": "failed"}],
    }
    assert [d.id for d in await list_dead(bus)] == [event.id]


async def test_replay_stops_at_the_next_message_when_the_bus_closes(bus_factory, amqp, event_factory, wait_until):
    bus = await bus_factory("notifications")
    await bare_queues(amqp, bus)
    total = 2000
    await park(amqp, bus, [event_factory("return.created") for _ in range(total)])

    replay = asyncio.create_task(replay_dead(bus))
    await wait_until(lambda: count(amqp, bus.names.main), message="the replay is under way")
    await bus.close()  # what a service's lifespan does on shutdown
    result = await asyncio.wait_for(replay, 10)

    assert not result.complete and 0 < result.replayed < total
    # Nothing lost, nothing doubled: what it did not reach is still parked.
    moved = await wait_until(lambda: _settled(amqp, bus, total), message="every message is in one queue")
    assert moved == result.replayed


async def _settled(amqp: Any, bus: EventBus, total: int) -> int | None:
    main, dead = await count(amqp, bus.names.main), await count(amqp, bus.names.dead)
    return main if main + dead == total else None


async def test_the_cli_replay_stops_cleanly_on_sigterm(bus_factory, amqp, event_factory, wait_until):
    bus = await bus_factory("metrics")
    await bare_queues(amqp, bus)
    total = 3000
    await park(amqp, bus, [event_factory("return.closed") for _ in range(total)])

    env = {**os.environ, "AMQP_URL": bus.amqp_url, "QUEUE_PREFIX": bus.names.base.removesuffix("metrics")}
    cli = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.deadletters",
        "replay",
        "--service",
        "metrics",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_until(lambda: count(amqp, bus.names.main), timeout=30, message="the CLI is replaying")
        cli.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(cli.communicate(), 15)
    finally:
        if cli.returncode is None:
            cli.kill()
    assert cli.returncode == 1, stderr.decode()  # stopped before the end of its snapshot
    result = json.loads(stdout)
    assert not result["complete"] and 0 < result["replayed"] < total
    assert await wait_until(lambda: _settled(amqp, bus, total)) == result["replayed"]
