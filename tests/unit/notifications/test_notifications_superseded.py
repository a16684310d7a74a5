"""A reminder is dropped once emails were recorded for a later version of its return, whatever the
order events arrive in and however often: the handler against an in-memory store whose
`note_version` and `superseded` behave as the MongoDB one's (`$max` on a document per return)."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from services.notifications.decisions import is_superseded
from services.notifications.handlers import record_emails
from services.notifications.samples import AT, sample_data
from shared.events import CloudEvent, new_event
from shared.models import Refund, Return

RETURN_ID = "ret_sample1"


class MemoryStore:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self.version_writes = 0
        self.notes: list[int] = []

    async def note_version(self, return_id: str, version: int) -> None:
        self.version_writes += 1
        self.versions[return_id] = max(self.versions.get(return_id, version), version)

    async def superseded(self, return_id: str, version: int) -> bool:
        return is_superseded(self.versions.get(return_id), version)

    async def record(self, docs: list[dict[str, Any]]) -> int:
        """Dispatcher.record over this store: how many of `docs` were new."""
        new = 0
        for doc in docs:
            key = (doc["event_id"], doc["recipient_role"], doc["template"])
            if key not in self.docs:
                self.docs[key] = doc
                new += 1
        self.notes.append(len(docs))
        return new

    def templates(self) -> Counter[str]:
        return Counter(doc["template"] for doc in self.docs.values())


def dispatcher(store: MemoryStore) -> Any:
    clock = SimpleNamespace(now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    return SimpleNamespace(store=store, clock=clock, record=store.record)


def event(event_type: str, version: int) -> CloudEvent:
    data = sample_data(event_type).model_copy(update={"version": version})
    return new_event(
        event_type,
        service="returns",
        subject=RETURN_ID,
        data=data,
        sequence=version,
        time=AT,
        event_id=str(uuid.uuid4()),
    )


async def deliver(store: MemoryStore, *events: CloudEvent) -> None:
    for each in events:
        data = each.typed()
        assert isinstance(data, Return | Refund)
        await record_emails(dispatcher(store), each, data)


@pytest.mark.parametrize(
    ("newest_seen", "version", "expected"),
    [(None, 1, False), (1, 1, False), (0, 1, False), (2, 1, True), (5, 4, True)],
)
def test_only_a_strictly_later_version_supersedes(newest_seen: int | None, version: int, expected: bool) -> None:
    assert is_superseded(newest_seen, version) is expected


async def test_the_reminder_is_recorded_once_exactly_when_it_arrives_before_the_answer() -> None:
    reminder, answer = event("seller.response_due_soon", 1), event("return.authorized", 2)
    # Every order of: the reminder, its redelivery, and the answer (itself delivered once or twice).
    for deliveries in (["R", "R", "A"], ["R", "R", "A", "A"]):
        for order in sorted(set(itertools.permutations(deliveries))):
            store = MemoryStore()
            await deliver(store, *(reminder if name == "R" else answer for name in order))
            expected_reminders = 1 if order.index("R") < order.index("A") else 0
            assert store.templates()["seller/response_due_soon"] == expected_reminders, order
            assert store.templates()["buyer/return_authorized"] == 1, order
            assert store.versions == {RETURN_ID: 2}, order


async def test_events_without_the_return_s_version_never_make_a_reminder_stale() -> None:
    store = MemoryStore()
    refund = event("refund.failed", 9)  # a refund's own version, not the return's
    await deliver(store, event("return.shipped", 3), event("return.authorized", 2), refund)
    assert store.versions == {RETURN_ID: 2}  # the answer's: only the events that leave `requested` count
    await deliver(store, event("seller.response_due_soon", 3))
    assert store.templates()["seller/response_due_soon"] == 1


async def test_a_lifecycle_notes_the_return_s_version_once_the_answer() -> None:
    store = MemoryStore()
    lifecycle = [("return.created", 1), ("return.authorized", 2), ("return.shipped", 3), ("return.received", 4)]
    await deliver(store, *(event(event_type, version) for event_type, version in lifecycle))
    assert store.version_writes == 1 and store.versions == {RETURN_ID: 2}
    await deliver(store, event("seller.response_due_soon", 1))  # late: the answer made it stale
    assert store.templates()["seller/response_due_soon"] == 0


async def test_an_event_s_emails_are_recorded_in_one_call() -> None:
    store = MemoryStore()
    await deliver(store, event("return.created", 1), event("return.received", 4))
    assert store.notes == [2, 2]
