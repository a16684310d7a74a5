"""Email and return facts handled at once are written together (shared/upserts.py), against the real
store: each answer is what a single upsert would say (first, newer, stale), and the facts are right."""

from __future__ import annotations

import asyncio

import pytest

from services.metrics.facts import return_fact
from services.metrics.store import Kept, MetricsStore
from tests.unit.metrics.builders import at, authorized, email, requested

pytestmark = pytest.mark.integration


async def test_email_facts_recorded_at_once_go_out_in_a_few_writes_with_exact_answers(db):
    store = MetricsStore(db)
    await store.record_notification(email("n-older", at(1), status="failed"))  # replaced below
    await store.record_notification(email("n-newer", at(5)))  # a stale copy arrives below
    batcher = store._batchers["notification_facts"].group
    before, upserts_before = batcher.batches, batcher.items

    fresh = [email(f"n-{i}", at(2)) for i in range(30)]
    answers = await asyncio.gather(
        *(store.record_notification(n) for n in fresh),
        store.record_notification(email("n-older", at(3))),
        store.record_notification(email("n-newer", at(4), status="failed")),
    )

    assert answers == [Kept.FIRST] * 30 + [Kept.NEWER, Kept.STALE]
    assert batcher.items - upserts_before == 32
    assert batcher.batches - before < 10  # one by one would be 32 writes
    stored = {doc["_id"]: doc["status"] async for doc in db["notification_facts"].find({})}
    assert stored == {**{n.notification_id: "sent" for n in fresh}, "n-older": "sent", "n-newer": "sent"}


async def test_two_replicas_recording_one_email_at_once_create_it_once(db):
    replicas = [MetricsStore(db), MetricsStore(db)]
    notes = [email(f"n-race-{i}", at(2)) for i in range(10)]
    answers = await asyncio.gather(*(r.record_notification(n) for n in notes for r in replicas))
    for i in range(10):
        pair = answers[2 * i : 2 * i + 2]
        assert sorted(pair, key=lambda k: k.value) == [Kept.FIRST, Kept.STALE], pair
    assert await db["notification_facts"].count_documents({}) == 10


async def test_return_facts_recorded_at_once_go_out_together_and_a_redelivery_is_stale(db):
    store = MetricsStore(db)
    first = [requested(f"r-b{i}", buyer_id="bb", seller_id="s", created_at=at(1)) for i in range(20)]
    await store.record_return(return_fact(first[0]))
    batcher = store._batchers["return_facts"].group
    before = batcher.batches

    answers = await asyncio.gather(
        *(store.record_return(return_fact(r)) for r in first[1:]),
        store.record_return(return_fact(first[0])),  # redelivered: an equal version
        store.record_return(return_fact(authorized(first[0], at(2)))),  # its next version
    )

    assert answers == [Kept.FIRST] * 19 + [Kept.STALE, Kept.NEWER]
    assert batcher.batches - before < 10  # one by one would be 21 writes
    stored = await db["return_facts"].find_one({"_id": "r-b0"})
    assert stored["version"] == first[0].version + 1
