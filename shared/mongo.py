"""MongoDB access: one motor client per process, UTC-aware, and the helpers stores share."""
from __future__ import annotations

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from pymongo.errors import DuplicateKeyError

__all__ = ["connect", "DuplicateKeyError"]


def connect(url: str, database: str) -> tuple[AsyncIOMotorClient, AsyncIOMotorDatabase]:
    client: AsyncIOMotorClient = AsyncIOMotorClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)
    return client, client[database]


async def ping(db: AsyncIOMotorDatabase) -> bool:
    try:
        await db.command("ping")
        return True
    except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
        return False
