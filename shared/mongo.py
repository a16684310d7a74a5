"""MongoDB access: one motor client per process, UTC-aware, and the helpers stores share."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorCollection, AsyncIOMotorDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.group_write import GroupWriter

__all__ = [
    "Client",
    "Collection",
    "Database",
    "Document",
    "DuplicateKeyError",
    "NewDocuments",
    "as_stored",
    "connect",
    "insert_new",
]

DUPLICATE_KEY = 11000

Document: TypeAlias = dict[str, Any]
# Motor's classes are generic only in their stubs, so these aliases are strings (never evaluated at run time).
Client: TypeAlias = "AsyncIOMotorClient[Document]"
Database: TypeAlias = "AsyncIOMotorDatabase[Document]"
Collection: TypeAlias = "AsyncIOMotorCollection[Document]"


def connect(url: str, database: str) -> tuple[Client, Database]:
    client: Client = AsyncIOMotorClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)
    return client, client[database]


def as_stored(at: datetime) -> datetime:
    """`at` as it reads back from MongoDB (milliseconds): truncate first, so an event, an
    assessment and a later read agree."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


async def _insert_unordered(collection: Any, docs: list[Document]) -> tuple[set[int], set[int], BulkWriteError | None]:
    """`insert_many(docs, ordered=False)`: the indexes whose unique key already existed, those
    refused for another reason, and the error that named them (None when all were inserted)."""
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        existing = {error["index"] for error in errors if error.get("code") == DUPLICATE_KEY}
        return existing, {error["index"] for error in errors} - existing, exc
    return set(), set(), None


async def insert_new(collection: Any, docs: list[Document]) -> list[Document]:
    """Insert `docs` in one unordered command; returns those inserted (the others' unique key
    already exists: a redelivered event's documents, recorded the first time)."""
    if not docs:
        return []
    existing, refused, failure = await _insert_unordered(collection, docs)
    if refused and failure is not None:
        raise failure
    return [doc for i, doc in enumerate(docs) if i not in existing]


class NewDocuments:
    """`insert_new` of one collection, written together: callers that insert while an insert is in
    flight go out in the next one (group commit, shared/group_write.py). Each caller is answered
    with its own documents that were inserted, as `insert_new` answers. A document the server
    refuses for another reason than its unique key fails its own caller only; the store away fails
    every caller of the batch (their events are retried, and what was inserted meets its unique key)."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.group: GroupWriter[list[Document], list[Document]] = GroupWriter(self._write)

    async def insert(self, docs: list[Document]) -> list[Document]:
        return await self.group.submit(docs) if docs else []

    async def _write(self, batch: list[list[Document]]) -> list[list[Document] | BaseException]:
        existing, refused, failure = await _insert_unordered(self.collection, [doc for docs in batch for doc in docs])
        answers: list[list[Document] | BaseException] = []
        start = 0
        for docs in batch:
            mine = range(start, start + len(docs))
            start += len(docs)
            if failure is not None and refused.intersection(mine):  # refused, not for its unique key
                answers.append(failure)
            else:
                answers.append([doc for i, doc in zip(mine, docs, strict=True) if i not in existing])
        return answers


async def ping(db: Database) -> bool:
    try:
        await db.command("ping")
        return True
    except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
        return False
