"""Hold the services to shared/query_shapes/: every filter their MongoDB clients send is listed.

`ShapeRecorder.listener(service)` is a pymongo command listener. The integration conftest gives one
to every client `shared.mongo.connect` makes for a service (not to the tests' probing clients) and
fails a test when a filter sent meanwhile has a shape that `shared.query_shapes.SHAPES` does not
list for that service and collection.
"""

from __future__ import annotations

import threading
from dataclasses import astuple, dataclass, field
from typing import Any

from pymongo import monitoring

from shared.query_shapes import SHAPES, QueryShape, command_filters, filter_terms, listed, render_terms


@dataclass(frozen=True)
class Unlisted:
    service: str
    collection: str
    shape: str
    sort: str
    command: str

    def __str__(self) -> str:
        sort = f" sort {self.sort}" if self.sort else ""
        return f"{self.service}: {self.command} on {self.collection}: {self.shape}{sort}"


@dataclass
class ShapeRecorder:
    unlisted: list[Unlisted] = field(default_factory=list)
    seen: set[QueryShape] = field(default_factory=set)
    services: set[str] = field(default_factory=set)  # those whose clients sent a filter
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def listener(self, service: str) -> monitoring.CommandListener:
        return _Listener(self, service)

    def record(self, service: str, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name in ("admin", "config", "local"):
            return
        for collection, query, sort in command_filters(event.command):
            terms = filter_terms(collection, query)
            shape = listed(collection, terms, sort, service)
            with self._lock:
                self.services.add(service)
                if shape is None:
                    self.unlisted.append(Unlisted(service, collection, render_terms(terms), sort, event.command_name))
                else:
                    self.seen.add(shape)

    def take_unlisted(self) -> list[Unlisted]:
        with self._lock:
            found, self.unlisted = self.unlisted, []
        return found

    def export(self) -> dict[str, Any]:
        """What an xdist worker saw, in types its channel carries (`merge` takes it back)."""
        with self._lock:
            return {
                "unlisted": [list(astuple(item)) for item in self.unlisted],
                "seen": sorted(SHAPES.index(shape) for shape in self.seen),
                "services": sorted(self.services),
            }

    def merge(self, exported: dict[str, Any] | None) -> None:
        if not exported:
            return
        with self._lock:
            self.unlisted.extend(Unlisted(*item) for item in exported["unlisted"])
            self.seen.update(SHAPES[index] for index in exported["seen"])
            self.services.update(exported["services"])


class _Listener(monitoring.CommandListener):
    def __init__(self, recorder: ShapeRecorder, service: str) -> None:
        self.recorder, self.service = recorder, service

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.recorder.record(self.service, event)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def complaint(found: list[Unlisted]) -> str:
    lines = sorted({str(item) for item in found})
    return (
        "the services sent filters whose shape shared/query_shapes/ does not list (add each with the "
        "index that serves it, and `scripts/gen-contracts` for docs/design.md):\n  " + "\n  ".join(lines)
    )
