"""Hold the services to shared/query_shapes.py: every filter their MongoDB clients send is listed.

`ShapeRecorder` is a pymongo command listener. The integration conftest gives it to every client
`shared.mongo.connect` makes (the services' own clients, not the tests' probing ones) and fails a
test when a filter sent meanwhile has a shape that `shared.query_shapes.SHAPES` does not list for
its collection.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from pymongo import monitoring

from shared.query_shapes import QueryShape, command_filters, filter_terms, listed, render_terms


@dataclass(frozen=True)
class Unlisted:
    collection: str
    shape: str
    sort: str
    command: str

    def __str__(self) -> str:
        sort = f" sort {self.sort}" if self.sort else ""
        return f"{self.command} on {self.collection}: {self.shape}{sort}"


@dataclass
class ShapeRecorder(monitoring.CommandListener):
    unlisted: list[Unlisted] = field(default_factory=list)
    seen: set[QueryShape] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name in ("admin", "config", "local"):
            return
        for collection, query, sort in command_filters(event.command):
            terms = filter_terms(collection, query)
            shape = listed(collection, terms, sort)
            with self._lock:
                if shape is None:
                    self.unlisted.append(Unlisted(collection, render_terms(terms), sort, event.command_name))
                else:
                    self.seen.add(shape)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def take_unlisted(self) -> list[Unlisted]:
        with self._lock:
            found, self.unlisted = self.unlisted, []
        return found


def complaint(found: list[Unlisted]) -> str:
    lines = sorted({str(item) for item in found})
    return (
        "the services sent filters whose shape shared/query_shapes.py does not list (add each with the "
        "index that serves it, and `scripts/gen-contracts` for docs/design.md):\n  " + "\n  ".join(lines)
    )
