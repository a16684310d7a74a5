"""A fact is one upsert per event against the real store: the first copy creates it, a newer version
replaces it, an older or equal one changes nothing (an equal version of a return or refund in one
command), and two replicas writing one fact at once keep the newest version, one of them creating it."""

from __future__ import annotations

import asyncio

import pytest

from services.metrics.facts import refund_fact, return_fact, return_from_document
from services.metrics.store import Kept, MetricsStore
from tests.integration.commands import counted_database
from tests.unit.metrics.builders import at, authorized, email, received, refund, requested, shipped

pytestmark = pytest.mark.integration


def _versions(return_id: str):
    first = requested(return_id, buyer_id="bf", seller_id="s", created_at=at(1))
    second = authorized(first, at(1, 1))
    third = shipped(second, at(2))
    return [return_fact(r) for r in (first, second, third, received(third, at(3)))]


async def test_one_upsert_per_event_keeps_the_newest_version(db):
    store = MetricsStore(db)
    v1, v2, v3, v4 = _versions("r-up")
    assert [await store.record_return(f) for f in (v2, v2, v1, v4, v3, v4)] == [
        Kept.FIRST,
        Kept.STALE,
        Kept.STALE,
        Kept.NEWER,
        Kept.STALE,
        Kept.STALE,
    ]
    stored = await db["return_facts"].find({}).to_list(None)
    assert [return_from_document(doc) for doc in stored] == [v4]
    assert stored[0]["last_event_at"] == v4.received_at

    assert await store.record_notification(email("n-1", at(2), status="failed")) is Kept.FIRST
    assert await store.record_notification(email("n-1", at(2), status="failed")) is Kept.STALE
    assert await store.record_notification(email("n-1", at(3), attempts=2)) is Kept.NEWER
    assert await db["notification_facts"].find_one({"_id": "n-1"}, {"_id": 0, "status": 1}) == {"status": "sent"}


async def test_two_replicas_writing_one_fact_at_once_keep_the_newest_created_once(db):
    replicas = [MetricsStore(db), MetricsStore(db)]  # no shared in-process lock between them
    for n in range(5):
        versions = _versions(f"r-race-{n}")
        writes = [replicas[i % 2].record_return(fact) for i, fact in enumerate(versions * 2)]
        kept = await asyncio.gather(*writes)
        assert kept.count(Kept.FIRST) == 1, kept
        assert await db["return_facts"].find_one({"_id": f"r-race-{n}"}, {"_id": 0, "version": 1}) == {
            "version": versions[-1].version
        }


async def test_refund_issued_and_return_refunded_cost_one_command_each(mongodb_url):
    """Both carry the refund at one version: the second is a no-op match, not a failed insert and a retry."""
    async with counted_database(mongodb_url) as (db, commands):
        store = MetricsStore(db)
        ret = authorized(requested("r-one", buyer_id="bo", seller_id="s", created_at=at(1)), at(1, 1))
        issued = refund_fact(refund(ret, issued_at=at(2), amount=1500))
        commands.names.clear()
        assert [await store.record_refund(issued) for _ in range(2)] == [Kept.FIRST, Kept.STALE]
        assert commands.names == ["update", "update"]
