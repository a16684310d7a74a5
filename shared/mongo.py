"""MongoDB access: one motor client per process, UTC-aware, and the helpers stores share."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorCollection, AsyncIOMotorDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

__all__ = ["Client", "Collection", "Database", "Document", "DuplicateKeyError", "as_stored", "connect", "insert_new"]

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


async def insert_new(collection: Any, docs: list[Document]) -> list[Document]:
    """Insert `docs` in one unordered command; returns those inserted (the others' unique key
    already exists: a redelivered event's documents, recorded the first time)."""
    if not docs:
        return []
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        existing = {error["index"] for error in errors}
        return [doc for i, doc in enumerate(docs) if i not in existing]
    return docs


async def ping(db: Database) -> bool:
    try:
        await db.command("ping")
        return True
    except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
        return False
