"""MongoDB access: one motor client per process, UTC-aware, and the helpers stores share."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorCollection, AsyncIOMotorDatabase
from pymongo.errors import DuplicateKeyError

__all__ = ["Client", "Collection", "Database", "Document", "DuplicateKeyError", "as_stored", "connect"]

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


async def ping(db: Database) -> bool:
    try:
        await db.command("ping")
        return True
    except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
        return False
