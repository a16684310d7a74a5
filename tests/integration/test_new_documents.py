"""Inserts of new documents written together (shared/mongo.py `NewDocuments`), on the real server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo.errors import BulkWriteError

from shared.mongo import NewDocuments

pytestmark = pytest.mark.integration


def emails(event_id: str, *roles: str) -> list[dict[str, Any]]:
    return [{"_id": f"{event_id}-{role}", "event_id": event_id, "role": role} for role in roles]


async def test_inserts_waiting_together_are_one_command_and_each_caller_gets_its_own_new_documents(db):
    await db.notifications.insert_one(emails("e2", "buyer")[0])  # recorded before: a redelivered event
    new = NewDocuments(db.notifications)
    first = asyncio.create_task(new.insert(emails("e1", "buyer", "seller")))  # written alone
    await asyncio.sleep(0)
    answers = await asyncio.gather(
        first, new.insert(emails("e2", "buyer", "seller")), new.insert(emails("e3", "seller")), new.insert([])
    )

    assert (new.group.batches, new.group.items) == (2, 3)  # the empty list costs nothing
    assert [[doc["_id"] for doc in docs] for docs in answers] == [
        ["e1-buyer", "e1-seller"],
        ["e2-seller"],  # its buyer's email existed: not answered as new
        ["e3-seller"],
        [],
    ]
    stored = sorted([doc["_id"] async for doc in db.notifications.find({})])
    assert stored == ["e1-buyer", "e1-seller", "e2-buyer", "e2-seller", "e3-seller"]


async def test_a_failed_insert_fails_every_caller_in_its_batch():
    class Broken:
        async def insert_many(self, *_: Any, **__: Any) -> Any:
            raise ConnectionError("store away")

    new = NewDocuments(Broken())
    results = await asyncio.gather(
        new.insert(emails("a", "buyer")), new.insert(emails("b", "buyer")), return_exceptions=True
    )
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    assert new.group.writer is None


async def test_a_document_refused_for_another_reason_fails_its_own_caller_only():
    class Refusing:
        async def insert_many(self, docs: list[dict[str, Any]], **_: Any) -> Any:
            assert [doc["_id"] for doc in docs] == ["a-buyer", "b-buyer", "b-seller", "c-seller"]
            raise BulkWriteError(
                {
                    "writeErrors": [
                        {"index": 1, "code": 2, "errmsg": "refused"},  # b's buyer email
                        {"index": 3, "code": 11000, "errmsg": "duplicate key"},  # c's: recorded before
                    ]
                }
            )

    new = NewDocuments(Refusing())
    a, b, c = await asyncio.gather(
        new.insert(emails("a", "buyer")),
        new.insert(emails("b", "buyer", "seller")),
        new.insert(emails("c", "seller")),
        return_exceptions=True,
    )
    assert [doc["_id"] for doc in a] == ["a-buyer"]
    assert isinstance(b, BulkWriteError)
    assert c == []
