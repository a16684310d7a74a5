"""How a store commits events: into the aggregate's own document, in the same write as its change.

The transactional outbox without multi-document transactions (the relay that publishes it is
shared/outbox.py). A store writes an aggregate's new events into that document's `outbox` array in
the SAME single-document write as the state change, so both commit or neither does; MongoDB's
single-document atomicity is all this needs. Stores must update such documents with $set/$push
(never replace_one with a stale copy, which would drop pending events).

- A new document gets `outbox_fields(events, claim)` in its insert.
- An existing one gets `with_outbox(update, events, claim=...)`, or goes through `commit_events`,
  which claims the document for the relay when it may and answers how to wake the relay.

Fields on the document: outbox [{id, type, envelope, exchange?}], outbox_pending (true while events
wait; indexed, so finding work is cheap), outbox_lease_until / outbox_lease_owner (one relay at a
time per document), outbox_failures (publish attempts that failed in a row, for back-off).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from pymongo import ReturnDocument

from shared.events import CloudEvent

OUTBOX, PENDING, LEASE, OWNER, FAILURES = (
    "outbox",
    "outbox_pending",
    "outbox_lease_until",
    "outbox_lease_owner",
    "outbox_failures",
)


def outbox_entries(events: Iterable[CloudEvent], exchange: str | None = None) -> list[dict[str, Any]]:
    """Outbox items; `exchange` sends them somewhere other than the bus's own exchange."""
    target = {"exchange": exchange} if exchange else {}
    return [
        {"id": e.id, "type": e.type, "envelope": e.model_dump(mode="json", exclude_none=True), **target} for e in events
    ]


def outbox_fields(events: Iterable[CloudEvent], claim: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fields to add to a new document: `insert_one({**doc, **outbox_fields(events)})`. `claim`
    (OutboxRelay.claim()) leases it to the relay that will publish the events right after."""
    entries = outbox_entries(events)
    return {OUTBOX: entries, PENDING: True, **(claim or {})} if entries else {OUTBOX: []}


def _push(entries: list[dict[str, Any]], claim: dict[str, Any] | None) -> dict[str, Any]:
    """Update fragment appending entries to an existing document's outbox (and leasing it with `claim`)."""
    if not entries:
        return {}
    return {"$push": {OUTBOX: {"$each": entries}}, "$set": {PENDING: True, **(claim or {})}}


def with_outbox(
    update: dict[str, Any],
    events: Iterable[CloudEvent],
    exchange: str | None = None,
    claim: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`update` (e.g. {"$set": ..., "$inc": ...}) plus the outbox push, as one update document."""
    return with_entries(update, outbox_entries(events, exchange), claim)


def with_entries(
    update: dict[str, Any], entries: list[dict[str, Any]], claim: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`with_outbox` of entries already built (`outbox_entries`): a caller that needs them too."""
    merged = {op: dict(fields) for op, fields in update.items()}
    for op, fields in _push(entries, claim).items():
        clash = merged.setdefault(op, {}).keys() & fields.keys()
        if clash:
            raise ValueError(f"update already sets outbox field(s) {sorted(clash)}")
        merged[op].update(fields)
    return merged


class Claims(Protocol):
    """What a store needs of its relay to commit events claimed for it (an OutboxRelay)."""

    def claim(self) -> dict[str, Any]: ...

    def claimable(self) -> dict[str, Any]: ...


async def commit_events(
    collection: Any,
    expected: dict[str, Any],
    update: dict[str, Any],
    events: Sequence[CloudEvent],
    relay: Claims | None,
) -> dict[str, Any] | None:
    """Apply `update` plus `events` (pushed to the outbox) to the one document `expected` matches, in
    one write. None when it matches nothing; else how to wake the relay afterwards:
    `relay.wake(doc_id, collection=collection, **answer)`.

    With events and a relay, the write claims the document for that relay unless another relay
    holds it, and answers `{"entries": outbox}` (the direct path: the relay's release is the only
    other command). When the claiming write matches nothing (a stale `expected`, or another
    replica's relay still publishing this document) it is tried once more without the claim and
    answers `{}` (woken by id: the relay holding it meets the new events when it releases). Without
    events it answers `{"entries": []}`, which wakes nothing.
    """
    if events and relay is not None:
        claimable = relay.claimable()
        if claimable.keys() & expected.keys():
            raise ValueError(f"the filter already has {sorted(claimable.keys() & expected.keys())}")
        doc = await collection.find_one_and_update(
            expected | claimable,
            with_outbox(update, events, claim=relay.claim()),
            projection={OUTBOX: 1},
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            return {"entries": list(doc.get(OUTBOX) or [])}
    result = await collection.update_one(expected, with_outbox(update, events))
    if not result.matched_count:
        return None
    return {} if events else {"entries": []}
