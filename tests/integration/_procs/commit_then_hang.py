"""A publisher that dies between commit and publish: it commits a document carrying a pending
outbox event, says "committed", then hangs until the test kills it (SIGKILL).

    python commit_then_hang.py MONGODB_URL DATABASE COLLECTION DOC_ID EVENT_JSON
"""

from __future__ import annotations

import asyncio
import sys

from motor.motor_asyncio import AsyncIOMotorClient

from shared.events import CloudEvent
from shared.outbox_writes import outbox_fields


async def main(url: str, database: str, collection: str, doc_id: str, event_json: str) -> None:
    client = AsyncIOMotorClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)
    event = CloudEvent.from_json(event_json)
    # The state change and its event in one single-document write, as a store does it.
    await client[database][collection].insert_one({"_id": doc_id, "status": "received", **outbox_fields([event])})
    print("committed", flush=True)
    await asyncio.Event().wait()  # the relay would publish now; the test kills us first


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
