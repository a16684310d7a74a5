"""Email facts handled at once are written together (services/metrics/batching.py), against the real
store: each answer is what a single upsert would say (first, newer, stale), and the facts are right."""

from __future__ import annotations

import asyncio

import pytest

from services.metrics.store import Kept, MetricsStore
from tests.unit.metrics.builders import at, email

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
