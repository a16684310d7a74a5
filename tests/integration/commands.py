"""Count the MongoDB commands a service sends, per collection: tests that pin what a path costs."""

from __future__ import annotations

import threading

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
