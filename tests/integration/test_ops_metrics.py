"""Operational metrics against the real broker and store: consumer outcomes, handler latency,
dead-letter depth and the outbox backlog (shared/ops_metrics.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
from prometheus_client import REGISTRY

from shared import ops_metrics
from shared.bus import PermanentError
from shared.clock import FixedClock
from shared.events import CloudEvent
from shared.outbox_writes import outbox_fields
from tests.integration.conftest import make_event


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_consumer_outcomes_latency_and_dead_letter_depth(bus_factory, event_factory, wait_until):
    service = f"ops-{uuid.uuid4().hex[:6]}"
    bus = await bus_factory(service)
    failed_once: set[str] = set()
    handled: list[str] = []

    async def handler(event: CloudEvent) -> None:
        if event.subject == "bad":
            raise PermanentError("cannot be handled")
        if event.subject == "flaky" and event.id not in failed_once:
            failed_once.add(event.id)
            raise RuntimeError("try again")
        handled.append(event.id)

    bus.subscribe("return.received", handler)
    await bus.start()
    kind = "return.received"
    before = {
        o: value("returns_platform_events_consumed_total", type=kind, outcome=o) for o in ("ok", "retried", "parked")
    }
    runs_before = value("returns_platform_handler_seconds_count", type=kind)

    ok, flaky, bad = (event_factory(kind, subject=s) for s in ("fine", "flaky", "bad"))
    for event in (ok, flaky, bad):
        await bus.publish(event)
    await wait_until(lambda: {ok.id, flaky.id} <= set(handled), message="both good events handled")

    def delta(outcome: str) -> float:
        return value("returns_platform_events_consumed_total", type=kind, outcome=outcome) - before[outcome]

    await wait_until(lambda: delta("parked") == 1, message="the bad event counted as parked")
    assert (delta("ok"), delta("retried")) == (2, 1)
    assert value("returns_platform_handler_seconds_count", type=kind) - runs_before == 4  # failed runs too

    await ops_metrics.refresh(max_age=0)  # what a scrape does
    assert value("returns_platform_dead_letter_depth", service=service) == 1
    await bus.close()  # unwatched: its queue is no longer read
    assert id(bus) not in ops_metrics._sources


async def test_an_unhandled_type_is_counted_without_its_name(bus_factory, amqp, wait_until):
    """A message of a type nobody handles is parked under `<other>`: forged types add no series."""
    service = f"ops-{uuid.uuid4().hex[:6]}"
    bus = await bus_factory(service)
    bus.subscribe("return.received", lambda event: _nothing())
    await bus.start()
    parked_before = value("returns_platform_events_consumed_total", type=ops_metrics.OTHER, outcome="parked")
    async with amqp.channel() as channel:
        body = make_event("forged.type").to_json()
        await channel.default_exchange.publish(aio_pika.Message(body, type="forged.type"), routing_key=bus.names.main)
    await wait_until(
        lambda: (
            value("returns_platform_events_consumed_total", type=ops_metrics.OTHER, outcome="parked")
            == parked_before + 1
        ),
        message="parked as <other>",
    )
    assert value("returns_platform_events_consumed_total", type="forged.type", outcome="parked") == 0


async def _nothing() -> None:
    return None


async def test_outbox_backlog_and_oldest_age_are_read_on_scrape(db):
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    collection = db["ops_outbox"]
    old, newer, newest = (
        CloudEvent(id=str(uuid.uuid4()), source="/t", type="return.created", time=now - ago, subject="r", data={})
        for ago in (timedelta(minutes=7), timedelta(minutes=2), timedelta(seconds=5))
    )
    await collection.insert_one({"_id": "a", **outbox_fields([old, newest])})
    await collection.insert_one({"_id": "b", **outbox_fields([newer])})
    await collection.insert_one({"_id": "c", **outbox_fields([])})  # nothing pending
    source = ops_metrics.outbox_source("ops-outbox", [collection], FixedClock(now))

    await source()
    assert value("returns_platform_outbox_pending", service="ops-outbox") == 3
    assert value("returns_platform_outbox_oldest_pending_age_seconds", service="ops-outbox") == 420

    await collection.update_many({}, {"$set": {"outbox": []}, "$unset": {"outbox_pending": ""}})  # all published
    await source()
    assert value("returns_platform_outbox_pending", service="ops-outbox") == 0
    assert value("returns_platform_outbox_oldest_pending_age_seconds", service="ops-outbox") == 0
