"""The newest version of each return noted at once (`NotificationStore.note_version`) against the real
store: written together, and the highest version kept whatever the order."""

from __future__ import annotations

import asyncio
import random

import pytest

from services.notifications.store import NotificationStore

pytestmark = pytest.mark.integration


async def test_versions_noted_at_once_keep_each_returns_highest_in_few_writes(db):
    store = NotificationStore(db)
    notes = [(f"r-{i}", version) for i in range(10) for version in (1, 2, 3, 2)]
    random.Random(7).shuffle(notes)

    await asyncio.gather(*(store.note_version(return_id, version) for return_id, version in notes))

    stored = {doc["_id"]: doc["version"] async for doc in db["return_versions"].find({})}
    assert stored == {f"r-{i}": 3 for i in range(10)}
    assert store._versions.group.batches < len(notes)  # one by one would be 40 writes
    assert not await store.superseded("r-0", 3)
    assert await store.superseded("r-0", 2)
