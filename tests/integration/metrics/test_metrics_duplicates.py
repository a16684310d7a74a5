"""Metrics keeps no inbox: every copy of every event reaches a handler. Two replicas on one queue
and one database, each event published twice in a row (same id: the copies go to both replicas at
once) and once more under a new id, all shuffled: the stored facts, the buyers' windows and flags,
the figures and the announcements are those of one copy of each event at one replica."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from shared.clock import FixedClock
from shared.events import CloudEvent
from tests.integration.metrics.scenario import events
from tests.unit.metrics.builders import at, email, email_event

pytestmark = pytest.mark.integration

PERIOD = {"from": at(0).isoformat(), "to": at(14).isoformat()}
FACTS = ("return_facts", "refund_facts", "delivery_facts", "notification_facts")
# What a buyer's document says (the revision counts writes, so copies may raise it; the outbox is the relay's).
BUYER_FIELDS = ("flagged", "version", "since", "reason", "returns", "orders", "returned_orders", "review_at")


def emails() -> list[CloudEvent]:
    """Three sent and one failed in the period: e4 failed, then its resend succeeded; e5 is after it."""
    notes = [
        email("e1", at(1)),
        email("e2", at(2)),
        email("e3", at(3), status="failed"),
        email("e4", at(4), status="failed"),
        email("e4", at(4, 2), attempts=2),
        email("e5", at(15)),
    ]
    return [email_event(note) for note in notes]


async def _contents(metrics) -> dict[str, Any]:
    stored: dict[str, Any] = {c: await metrics.db[c].find({}).sort("_id").to_list(None) for c in FACTS}
    buyers = await metrics.db["buyers"].find({}).sort("_id").to_list(None)
    # A window lists its entries in the order they came: compare them as sets.
    stored["buyers"] = [
        {k: doc.get(k) for k in ("_id", *BUYER_FIELDS)}
        | {w: sorted(doc.get(w, []), key=lambda e: e["id"]) for w in ("window_returns", "window_deliveries")}
        for doc in buyers
    ]
    return stored


async def _reports(metrics) -> dict[str, Any]:
    return {
        "sA": await metrics.get("/v1/metrics/sellers/sA", **PERIOD),
        "sB": await metrics.get("/v1/metrics/sellers/sB", **PERIOD),
        "overview": await metrics.get("/v1/metrics/overview", **PERIOD),
        **{b: await metrics.get(f"/v1/metrics/buyers/{b}") for b in ("b1", "b4", "b9")},
    }


async def test_copies_at_two_replicas_at_once_have_the_effect_of_one(start_metrics, wait_until):
    script = events() + emails()
    reference = await start_metrics(FixedClock(at(20)))
    for event in script:
        await reference.publish(event)
    await wait_until(lambda: _all_copies(reference, len(script)), timeout=20, message="reference handled all")
    await wait_until(reference.outbox_drained, timeout=10, message="reference's buyer events published")

    clock = FixedClock(at(20))
    first = await start_metrics(clock)
    shared = first.settings
    second = await start_metrics(
        clock,
        exchange=shared.exchange,
        orders_exchange=shared.orders_exchange,
        queue_prefix=shared.queue_prefix,
        mongodb_db=shared.database_name,
    )
    stream = script + [e.model_copy(update={"id": str(uuid.uuid4())}) for e in script]
    random.Random(13).shuffle(stream)
    for event in stream:
        for _ in range(2):  # back to back: the queue hands them to the two replicas
            await first.publish(event)
    published = 2 * len(stream)
    await wait_until(
        lambda: _all_copies_at(first, second, published), timeout=30, message=f"{published} copies handled"
    )
    await wait_until(first.outbox_drained, timeout=10, message="buyer events published")
    # The copies did go to both replicas: the same event ids were handled by each.
    assert len(first.handled.ids & second.handled.ids) >= len(stream) // 4

    assert await _contents(first) == await _contents(reference)
    assert await _reports(first) == await _reports(reference)
    overview = await first.get("/v1/metrics/overview", **PERIOD)
    assert (overview["emails_sent"], overview["emails_failed"]) == (3, 1)
    # Each crossing announced once (both replicas' listeners hear the one exchange).
    flagged = [e.subject for e in first.published]
    assert flagged == [e.subject for e in reference.published] == ["b9"]


async def _all_copies(metrics, count: int) -> bool:
    return await metrics.copies_handled() == count


async def _all_copies_at(first, second, count: int) -> bool:
    return await first.copies_handled() + await second.copies_handled() == count
