"""Commits with events written together (shared/outbox_commit.py), on the real server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from pymongo.errors import OperationFailure

from shared.outbox import OutboxRelay
from shared.outbox_commit import CommitBatcher
from shared.outbox_writes import LEASE, OWNER, PENDING
from tests.integration.conftest import make_event

pytestmark = pytest.mark.integration


def relay() -> OutboxRelay:
    """A relay as a store sees it (its claim and claimable filter): never started."""
    return OutboxRelay(SimpleNamespace(service="test"), [])  # type: ignore[arg-type]  # a stand-in bus: only its name is read


def claimed_email(doc_id: str, claim: str = "k") -> dict[str, Any]:
    return {"_id": doc_id, "claim": claim, "status": "pending"}


def outcome(status: str) -> dict[str, Any]:
    return {"$set": {"status": status, "claim": None}, "$inc": {"version": 1}}


def ids(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["id"] for entry in entries]


async def test_commits_waiting_together_are_one_bulk_write_and_each_answers_its_own_events(db):
    mine = relay()
    await db.notifications.insert_many([claimed_email(n) for n in ("a", "b", "c")])
    batcher = CommitBatcher(db.notifications, mine)
    events = {n: [make_event("notification.sent", subject=n)] for n in ("a", "b", "c")}

    first = asyncio.create_task(batcher.commit({"_id": "a", "claim": "k"}, outcome("sent"), events["a"]))
    await asyncio.sleep(0)  # written alone (a findAndModify); b and c wait for it, then go together
    answers = await asyncio.gather(
        first,
        batcher.commit({"_id": "b", "claim": "k"}, outcome("sent"), events["b"]),
        batcher.commit({"_id": "c", "claim": "k"}, outcome("failed"), events["c"]),
    )

    assert (batcher.group.batches, batcher.group.items) == (2, 3)
    docs = {doc["_id"]: doc async for doc in db.notifications.find({})}
    for n, answer in zip(("a", "b", "c"), answers, strict=True):
        assert answer is not None and ids(answer["entries"]) == [e.id for e in events[n]]
        # the answer is the outbox as committed, claimed for this relay
        assert answer["entries"] == docs[n]["outbox"]
        assert docs[n][PENDING] is True and docs[n][OWNER] == mine.owner and docs[n]["claim"] is None
    assert [docs[n]["status"] for n in ("a", "b", "c")] == ["sent", "sent", "failed"]


async def test_in_a_batch_a_lost_claim_and_a_document_another_relay_holds_are_decided_alone(db):
    mine = relay()
    held_until = datetime.now(UTC) + timedelta(minutes=5)
    await db.notifications.insert_many(
        [
            claimed_email("ok"),
            claimed_email("lost", claim="someone-else"),  # taken over since: the outcome is not ours to write
            {**claimed_email("held"), OWNER: "other-replica", LEASE: held_until},  # another relay publishes it
        ]
    )
    batcher = CommitBatcher(db.notifications, mine)
    events = {n: [make_event("notification.sent", subject=n)] for n in ("ok", "lost", "held")}

    answers = await asyncio.gather(
        *(batcher.commit({"_id": n, "claim": "k"}, outcome("sent"), events[n]) for n in ("ok", "lost", "held"))
    )

    assert (batcher.group.batches, batcher.group.items) == (1, 3)  # one bulk write, then the misses alone
    ok, lost, held = answers
    assert ok is not None and ids(ok["entries"]) == [events["ok"][0].id]
    assert lost is None  # as commit_events says of a claim lost
    assert held == {}  # committed without this relay's claim: woken by `_id` once the other lets go
    docs = {doc["_id"]: doc async for doc in db.notifications.find({})}
    assert docs["lost"]["status"] == "pending" and "outbox" not in docs["lost"]
    assert ids(docs["held"]["outbox"]) == [events["held"][0].id] and docs["held"]["status"] == "sent"
    assert docs["held"][OWNER] == "other-replica"  # its lease untouched
    assert docs["ok"][OWNER] == mine.owner


async def test_a_failed_bulk_write_fails_each_commit_in_it():
    class Broken:
        async def bulk_write(self, *_: Any, **__: Any) -> Any:
            raise ConnectionError("store away")

        find_one_and_update = bulk_write

    batcher = CommitBatcher(Broken(), relay())
    commits = (batcher.commit({"_id": n, "claim": "k"}, outcome("sent"), [make_event()]) for n in "ab")
    results = await asyncio.gather(*commits, return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    assert batcher.group.writer is None  # the next commit starts a new writer


async def test_a_commit_retried_after_its_write_was_applied_answers_its_events(db):
    """The store went away after applying part of a bulk write: the sender retries with the same
    events, and the outcome already written is recognised by its event's id, not taken for a lost claim."""
    mine = relay()
    await db.notifications.insert_many([claimed_email("done"), claimed_email("todo")])
    events = {n: [make_event("notification.sent", subject=n)] for n in ("done", "todo")}
    first = CommitBatcher(db.notifications, mine)
    assert await first.commit({"_id": "done", "claim": "k"}, outcome("sent"), events["done"]) is not None

    retry = CommitBatcher(db.notifications, mine)
    answers = await asyncio.gather(
        *(retry.commit({"_id": n, "claim": "k"}, outcome("sent"), events[n]) for n in ("done", "todo"))
    )

    assert [ids(answer["entries"]) for answer in answers if answer] == [[events[n][0].id] for n in ("done", "todo")]
    docs = {doc["_id"]: doc async for doc in db.notifications.find({})}
    assert ids(docs["done"]["outbox"]) == [events["done"][0].id]  # written once, not twice
    assert ids(docs["todo"]["outbox"]) == [events["todo"][0].id] and docs["todo"]["status"] == "sent"


async def test_an_update_the_server_refuses_fails_its_own_commit_only(db):
    mine = relay()
    await db.notifications.insert_many(
        [claimed_email("ok1"), {**claimed_email("bad"), "version": "not a number"}, claimed_email("ok2")]
    )
    batcher = CommitBatcher(db.notifications, mine)
    events = {n: [make_event("notification.sent", subject=n)] for n in ("ok1", "bad", "ok2")}

    answers = await asyncio.gather(
        *(batcher.commit({"_id": n, "claim": "k"}, outcome("sent"), events[n]) for n in ("ok1", "bad", "ok2")),
        return_exceptions=True,
    )

    assert (batcher.group.batches, batcher.group.items) == (1, 3)
    ok1, bad, ok2 = answers
    assert isinstance(bad, OperationFailure)  # `$inc` of a text: refused again when written alone
    assert [ids(answer["entries"]) for answer in (ok1, ok2)] == [[events["ok1"][0].id], [events["ok2"][0].id]]
    docs = {doc["_id"]: doc async for doc in db.notifications.find({})}
    assert docs["bad"]["status"] == "pending" and "outbox" not in docs["bad"]
    assert docs["ok1"]["status"] == docs["ok2"]["status"] == "sent"
