"""MongoDB access: one motor client per process, UTC-aware, and the helpers stores share."""

from __future__ import annotations

from typing import Any, TypeAlias

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorCollection, AsyncIOMotorDatabase
from pymongo.errors import DuplicateKeyError

__all__ = ["Client", "Collection", "Database", "Document", "DuplicateKeyError", "connect"]

Document: TypeAlias = dict[str, Any]
# Motor's classes are generic only in their stubs, so these aliases are strings (never evaluated at run time).
Client: TypeAlias = "AsyncIOMotorClient[Document]"
Database: TypeAlias = "AsyncIOMotorDatabase[Document]"
Collection: TypeAlias = "AsyncIOMotorCollection[Document]"


def connect(url: str, database: str) -> tuple[Client, Database]:
    client: Client = AsyncIOMotorClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)
    return client, client[database]


async def ping(db: Database) -> bool:
    try:
        await db.command("ping")
        return True
    except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
        return False
