"""Fixtures for the store-conformance suite: a real MongoDB-wire server at MONGODB_URL.

The suite never skips: without a server every test fails with a message saying how to start one
(`scripts/infra-up`). Each test gets its own freshly named database, dropped afterwards.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from pymongo.errors import PyMongoError

MONGODB_URL = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017")


def new_client(**options: object) -> AsyncIOMotorClient:
    """A client configured like the services' (shared/mongo.py): UTC-aware datetimes."""
    return AsyncIOMotorClient(MONGODB_URL, tz_aware=True, serverSelectionTimeoutMS=5000, **options)


@pytest.fixture(scope="session")
async def mongo_client() -> AsyncIterator[AsyncIOMotorClient]:
    client = new_client()
    problem = None
    try:
        await client.admin.command("ping")
    except PyMongoError as exc:
        problem = str(exc).split(", Timeout:")[0]
    if problem is not None:
        client.close()
        pytest.fail(
            f"No MongoDB-wire server answers at MONGODB_URL={MONGODB_URL} ({problem}). "
            "Start the local servers first: scripts/infra-up (then `. .local/env`).",
            pytrace=False,
        )
    yield client
    client.close()


@pytest.fixture
async def db(mongo_client: AsyncIOMotorClient, request: pytest.FixtureRequest) -> AsyncIterator[AsyncIOMotorDatabase]:
    """A database of its own for this test (conf_<test>_<random>), dropped afterwards."""
    test_name = re.sub(r"\W+", "_", request.node.name).strip("_")[:40]
    name = f"conf_{test_name}_{uuid.uuid4().hex[:8]}"
    yield mongo_client[name]
    await mongo_client.drop_database(name)


@pytest.fixture
async def separate_clients() -> AsyncIterator[Callable[[int], Awaitable[list[AsyncIOMotorClient]]]]:
    """Factory of N independent clients (own connection pools), connected before they are returned,
    so that concurrent requests from them really travel on separate connections at once."""
    made: list[AsyncIOMotorClient] = []

    async def make(count: int) -> list[AsyncIOMotorClient]:
        clients = [new_client(maxPoolSize=1) for _ in range(count)]
        made.extend(clients)
        for client in clients:
            await client.admin.command("ping")
        return clients

    yield make
    for client in made:
        client.close()
