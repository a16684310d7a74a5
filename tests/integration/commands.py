"""Count the MongoDB commands a service sends, per collection: tests that pin what a path costs."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import monitoring

from shared.query_shapes import command_filters


class Commands(monitoring.CommandListener):
    """The write commands a service's client started, as (collection, command name), in order:
    inserts, and writes to documents named by `_id`. Reads, and the polls and sweeps that look for
    work (no `_id`), come at their own pace and are left out."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name, collection = event.command_name, event.command.get(event.command_name)
        if not isinstance(collection, str) or name in ("find", "aggregate", "count", "distinct", "getMore"):
            return
        if name == "insert" or any("_id" in query for _, query, _ in command_filters(event.command)):
            with self._lock:
                self.sent.append((collection, name))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def clear(self) -> None:
        with self._lock:
            self.sent.clear()

    def writes(self, collection: str) -> list[str]:
        with self._lock:
            return [name for on, name in self.sent if on == collection]


class CommandNames(monitoring.CommandListener):
    """Every command a client started, by name, in order: a test pins what one call costs."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@asynccontextmanager
async def counted_database(mongodb_url: str) -> AsyncIterator[tuple[Any, CommandNames]]:
    """A fresh database on a client of its own that names each command it sends; dropped after."""
    commands = CommandNames()
    client = AsyncIOMotorClient(mongodb_url, tz_aware=True, event_listeners=[commands])
    name = f"test_metrics_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name], commands
    finally:
        await client.drop_database(name)
        client.close()
