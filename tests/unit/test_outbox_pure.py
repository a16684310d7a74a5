"""The outbox's pure parts: what a store writes, and the back-off."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import uvloop

from shared.events import CloudEvent
from shared.outbox import OutboxRelay
from shared.outbox_writes import outbox_entries, outbox_fields, with_outbox
from shared.periodic import backoff_seconds


def event(n: int) -> CloudEvent:
    return CloudEvent(
        id=f"e-{n}",
        source="/services/returns",
        type="return.created",
        time=datetime(2026, 3, 1, tzinfo=UTC),
        subject="r-1",
        sequence=n,
        data={"n": n},
    )


def test_entries_carry_id_type_and_the_json_envelope():
    [entry] = outbox_entries([event(1)])
    assert entry["id"] == "e-1" and entry["type"] == "return.created"
    assert entry["envelope"]["time"] == "2026-03-01T00:00:00Z"
    assert CloudEvent.model_validate(entry["envelope"]) == event(1)


def test_fields_for_a_new_document():
    assert outbox_fields([event(1)])["outbox_pending"] is True
    assert outbox_fields([]) == {"outbox": []}


def test_push_appends_in_order_and_flags_pending():
    push = with_outbox({}, [event(1), event(2)])
    assert [e["id"] for e in push["$push"]["outbox"]["$each"]] == ["e-1", "e-2"]
    assert push["$set"] == {"outbox_pending": True}
    assert with_outbox({}, []) == {}


def test_with_outbox_merges_into_the_state_change_without_mutating_it():
    update = {"$set": {"status": "authorized", "version": 2}, "$unset": {"review_at": ""}}
    merged = with_outbox(update, [event(2)])
    assert merged["$set"] == {"status": "authorized", "version": 2, "outbox_pending": True}
    assert merged["$unset"] == {"review_at": ""} and "$push" in merged
    assert update == {"$set": {"status": "authorized", "version": 2}, "$unset": {"review_at": ""}}
    assert with_outbox(update, []) == update


def test_with_outbox_refuses_to_overwrite_outbox_fields():
    with pytest.raises(ValueError):
        with_outbox({"$set": {"outbox_pending": False}}, [event(1)])


def test_backoff_doubles_up_to_the_cap():
    assert [backoff_seconds(n, base=0.5, cap=4) for n in range(1, 6)] == [0.5, 1, 2, 4, 4]


def test_a_claim_rides_only_with_events():
    claim = {"outbox_lease_until": datetime(2026, 3, 1, tzinfo=UTC), "outbox_lease_owner": "returns:1"}
    assert outbox_fields([event(1)], claim=claim)["outbox_lease_owner"] == "returns:1"
    assert outbox_fields([], claim=claim) == {"outbox": []}
    merged = with_outbox({"$set": {"status": "shipped"}}, [event(3)], claim=claim)
    assert merged["$set"] == {"status": "shipped", "outbox_pending": True, **claim}
    assert with_outbox({"$set": {"status": "shipped"}}, [], claim=claim) == {"$set": {"status": "shipped"}}


class _Publisher:
    service = "returns"

    async def publish(self, event: CloudEvent, *, exchange: str | None = None) -> None:
        raise AssertionError("nothing is published here")


def test_a_retry_due_now_then_a_later_one_under_uvloop():
    """The direct path retries a document by `_id` at once (delay 0) after a release that found the
    outbox changed; on uvloop, the services' loop, call_later(0) gives a Handle without when()."""

    async def scenario() -> list[float]:
        relay = OutboxRelay(_Publisher(), [object()])
        relay._retry_in("returns", "r-1", 0)
        relay._retry_in("returns", "r-2", 0.5)  # raised AttributeError: 'Handle' object has no attribute 'when'
        relay._retry_in("returns", "r-3", 0)
        due = sorted(at for _, _, at in relay._retry.values())
        for timer in relay._timers:
            timer.cancel()
        return due

    due = uvloop.run(scenario())
    assert len(due) == 3 and due[-1] - due[0] >= 0.5
