"""Commits of events to documents of one collection, written together: one bulk write for the ones
that wait.

`shared.outbox_writes.commit_events` applies one document's change and pushes its events in one
findAndModify, which answers the outbox as committed so the relay can publish it at once. Under load
many such commits of one collection happen at about the same moment (the notification service
settles up to DISPATCH_WORKERS emails at once), each a command. So commits queue per collection
while a write of that collection is in flight (group commit: shared/group_write.py) and the next
write takes them all as one unordered bulk of updates, each with its own condition. A batch of one
is `commit_events` itself.

A bulk write answers no document back, so this is only for documents whose outbox the caller knows
to be empty before the write, with no one else adding to it (the holder of a claim on the
document): the outbox as committed is then exactly the events pushed. When every update matched,
each answer is `{"entries": its events}`, as `commit_events` would have said. When some did not, the
documents holding their new events (ids are unique) are read back by `_id`; the others are decided
alone by `commit_events`, which tells a lost claim (None) from a document another relay holds (the
events committed without the relay's claim, `{}`). An update the server refuses (a write error, not
the store away) is decided the same way, so only its own caller gets the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from shared.events import CloudEvent
from shared.group_write import GroupWriter
from shared.outbox_writes import OUTBOX, Claims, commit_events, outbox_entries, with_entries

# (filter naming one document by `_id`, its update, the events it commits)
Commit = tuple[dict[str, Any], dict[str, Any], Sequence[CloudEvent]]


class CommitBatcher:
    """Commits with events to one collection, claimed for `relay` (see the module docstring)."""

    def __init__(self, collection: Any, relay: Claims) -> None:
        self.collection, self.relay = collection, relay
        self.group: GroupWriter[Commit, dict[str, Any] | None] = GroupWriter(self._write)

    async def commit(
        self, expected: dict[str, Any], update: dict[str, Any], events: Sequence[CloudEvent]
    ) -> dict[str, Any] | None:
        """`commit_events(collection, expected, update, events, relay)` for a document whose outbox
        is empty and stays so but for this write; `expected` names it by `_id`."""
        return await self.group.submit((expected, update, events))

    async def _write(self, batch: list[Commit]) -> list[dict[str, Any] | BaseException | None]:
        if len(batch) == 1:
            [(expected, update, events)] = batch
            return [await commit_events(self.collection, expected, update, events, self.relay)]
        claimable, claim = self.relay.claimable(), self.relay.claim()
        pushed = [outbox_entries(events) for _, _, events in batch]
        operations = [
            UpdateOne(expected | claimable, with_entries(update, entries, claim))
            for (expected, update, _), entries in zip(batch, pushed, strict=True)
        ]
        try:
            result = await self.collection.bulk_write(operations, ordered=False)
            if result.matched_count == len(batch):
                return [{"entries": entries} for entries in pushed]
        except BulkWriteError:  # an update refused (not the store away): the others went on
            pass
        ids = [expected["_id"] for expected, _, _ in batch]
        new = [entry["id"] for entries in pushed for entry in entries]
        found = self.collection.find({"_id": {"$in": ids}, f"{OUTBOX}.id": {"$in": new}}, {"_id": 1})
        committed = {doc["_id"] async for doc in found}
        answers: list[dict[str, Any] | BaseException | None] = []
        for (expected, update, events), entries in zip(batch, pushed, strict=True):
            if expected["_id"] in committed:
                answers.append({"entries": entries})
                continue
            try:  # alone: a refused update fails its own caller only
                answers.append(await commit_events(self.collection, expected, update, events, self.relay))
            except Exception as exc:  # noqa: BLE001 - handed to that caller (GroupWriter raises it there)
                answers.append(exc)
        return answers
