"""Crash safety of sending, without I/O: the attempt mark, resend at most once, the heartbeat's rules."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.notifications.domain import (
    MAX_INTERRUPTED,
    Outcome,
    Step,
    after_attempt,
    applied,
    claim_update,
    given_up,
    new_notification,
    next_step,
    resend_update,
)
from services.notifications.jobs import Dispatcher, InFlight
from services.notifications.rendering import plan
from services.notifications.samples import sample_event
from services.notifications.settings import Settings

NOW = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
LEASE = timedelta(seconds=15)
DELAYS = [1000, 5000]


def pending() -> dict[str, Any]:
    event = sample_event("return.rejected")
    return new_notification(event, event.typed(), plan(event)[0], NOW)


def apply(doc: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """What MongoDB does with the $set / $inc / $push updates of the domain."""
    after = copy.deepcopy(doc)
    for name, value in update.get("$set", {}).items():
        after[name] = value
    for name, step in update.get("$inc", {}).items():
        after[name] = after.get(name, 0) + step
    for name, value in update.get("$push", {}).items():
        items = value["$each"] if isinstance(value, dict) and "$each" in value else [value]
        after[name] = [*after.get(name, []), *items]
    return after


def claimed(doc: dict[str, Any], n: int = 1) -> dict[str, Any]:
    return apply(doc, claim_update(f"claim-{n}", NOW + timedelta(seconds=n), NOW, LEASE))


def test_the_claim_records_the_attempt_before_anything_is_sent() -> None:
    update = claim_update("c-1", NOW, NOW - timedelta(hours=1), LEASE)
    assert update["$set"] == {"claimed_until": NOW - timedelta(hours=1) + LEASE, "claim": "c-1"}
    assert update["$push"] == {"sending": {"attempt_id": "c-1", "started_at": NOW}}
    doc = claimed(pending())
    assert doc["sending"] == [{"attempt_id": "claim-1", "started_at": NOW + timedelta(seconds=1)}]
    assert next_step(doc) is Step.SEND


def test_settling_clears_the_mark() -> None:
    doc = claimed(pending())
    update, event_type = after_attempt(doc, Outcome("sent", 250, "250 ok"), "<m@x>", NOW, DELAYS)
    after = apply(doc, update)
    assert after == applied(doc, update)  # the pure view of the write equals the write
    assert event_type == "notification.sent"
    assert after["sending"] == [] and after["interrupted"] == 0 and after["claim"] is None
    assert [a["outcome"] for a in after["attempt_log"]] == ["sent"] and after["attempts"] == 1


def test_a_claim_that_finds_an_unsettled_attempt_resends_and_logs_the_interruption() -> None:
    doc = claimed(claimed(pending(), 1), 2)  # the first sender died mid-attempt
    assert next_step(doc) is Step.RESEND
    update, event_type = after_attempt(doc, Outcome("sent", 250, "250 ok"), "<m@x>", NOW, DELAYS)
    after = apply(doc, update)
    assert after == applied(doc, update)
    assert event_type == "notification.sent" and after["status"] == "sent"
    assert [(a["outcome"], a["at"]) for a in after["attempt_log"]] == [
        ("interrupted", NOW + timedelta(seconds=1)),
        ("sent", NOW),
    ]
    assert after["attempts"] == 2 and after["interrupted"] == 1 and after["sending"] == []


def test_a_second_interruption_settles_failed_without_sending() -> None:
    doc = claimed(claimed(claimed(pending(), 1), 2), 3)
    assert next_step(doc) is Step.GIVE_UP
    update, event_type = given_up(doc, NOW)
    after = apply(doc, update)
    assert after == applied(doc, update)
    assert event_type == "notification.failed" and after["status"] == "failed" and after["failed_at"] == NOW
    assert [a["outcome"] for a in after["attempt_log"]] == ["interrupted", "interrupted"]
    assert after["error"].startswith("not sent again: 2 attempts were interrupted")
    assert after["attempts"] == 2 and after["interrupted"] == 2 and after["claim"] is None


def test_an_interruption_is_remembered_across_a_retry() -> None:
    # Interrupted, then the resend met a 451: the retry may still send (second copy at most) ...
    doc = claimed(claimed(pending(), 1), 2)
    doc = apply(doc, after_attempt(doc, Outcome("transient", 451, "451 later"), "<m@x>", NOW, DELAYS)[0])
    assert doc["status"] == "pending" and doc["interrupted"] == 1 and doc["attempts"] == 2
    retry = claimed(doc, 3)
    assert next_step(retry) is Step.RESEND
    # ... but if that retry is interrupted too, nothing more goes out.
    assert next_step(claimed(retry, 4)) is Step.GIVE_UP


def test_an_agent_resend_starts_clean() -> None:
    update = resend_update(NOW, "agent-1")
    assert update["$set"]["sending"] == [] and update["$set"]["interrupted"] == 0
    doc = apply(claimed(claimed(claimed(pending(), 1), 2), 3), update)
    assert next_step(claimed(doc, 4)) is Step.SEND


def test_documents_from_before_the_mark_existed_send_normally() -> None:
    doc = pending()
    del doc["sending"], doc["interrupted"]
    assert next_step(claimed(doc)) is Step.SEND


# What each attempt can come to. "accepted" outcomes reach the recipient; a crash is not settled.
CHOICES = ("crash_before_accept", "crash_after_accept", "sent", "transient", "permanent")


def explore(doc: dict[str, Any], copies: int, depth: int, found: list[tuple[int, str]]) -> None:
    """Every path of up to `depth` attempts: claim, then one of CHOICES (or the domain gives up)."""
    if doc["status"] != "pending" or depth == 0:
        found.append((copies, doc["status"]))
        return
    doc = claimed(doc, depth)
    step = next_step(doc)
    if step is Step.GIVE_UP:
        explore(apply(doc, given_up(doc, NOW)[0]), copies, depth - 1, found)
        return
    for choice in CHOICES:
        if choice.startswith("crash"):
            explore(doc, copies + (choice == "crash_after_accept"), depth - 1, found)
            continue
        outcome = {
            "sent": Outcome("sent", 250, "ok"),
            "transient": Outcome("transient", 451, "later"),
            "permanent": Outcome("permanent", 550, "no"),
        }[choice]
        update, _ = after_attempt(doc, outcome, "<m@x>", NOW, DELAYS)
        explore(apply(doc, update), copies + (choice == "sent"), depth - 1, found)


def test_whatever_crashes_and_failures_happen_an_email_reaches_its_recipient_at_most_twice() -> None:
    found: list[tuple[int, str]] = []
    explore(pending(), 0, 8, found)
    assert max(copies for copies, _ in found) == 1 + MAX_INTERRUPTED == 2
    assert {status for _, status in found} == {"sent", "failed"}  # 8 attempts always end it
    assert all(copies >= 1 for copies, status in found if status == "sent")


# ---- the heartbeat ----------------------------------------------------------------------------


class FakeStore:
    def __init__(self, answers: dict[str, bool | Exception]) -> None:
        self.answers, self.renewed = answers, []

    async def renew(self, notification_id: str, claim: str, until: datetime) -> bool:
        self.renewed.append((notification_id, claim, until))
        answer = self.answers[notification_id]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_the_lease_is_short_and_renewed_three_times_per_lease() -> None:
    dispatcher = Dispatcher(FakeStore({}), None, Settings(), clock=None)  # type: ignore[arg-type]  # a fake store; no mailer or clock needed
    assert dispatcher.lease == timedelta(seconds=15) and dispatcher.heartbeat_s == 5
    quick = Dispatcher(FakeStore({}), None, Settings(dispatch_lease_s=1.5), clock=None)  # type: ignore[arg-type]  # a fake store; no mailer or clock needed
    assert quick.lease == timedelta(seconds=1.5) and quick.heartbeat_s == 0.5


async def test_the_heartbeat_renews_claims_in_flight_and_stops_sends_whose_claim_was_taken_over() -> None:
    store = FakeStore({"kept": True, "taken": False, "answered": False, "store-down": RuntimeError("down")})
    dispatcher = Dispatcher(store, None, Settings(), clock=None)  # type: ignore[arg-type]  # a fake store; no mailer or clock needed
    never = asyncio.Event()
    flights = {}
    a_beat_ago = time.monotonic() - dispatcher.heartbeat_s
    for name in store.answers:
        flight = InFlight(name, f"claim-{name}", task=asyncio.create_task(never.wait()), leased_at=a_beat_ago)
        dispatcher.in_flight[name] = flights[name] = flight
    flights["answered"].answered = True  # the server answered: only the recording is left

    assert await dispatcher.renew_claims() == 1
    await asyncio.sleep(0)
    assert {(n, c) for n, c, _ in store.renewed} == {(n, f"claim-{n}") for n in store.answers}
    assert flights["taken"].task.cancelled()
    assert not any(flights[n].task.done() for n in ("kept", "answered", "store-down"))
    for flight in flights.values():
        flight.task.cancel()


async def test_claims_leased_less_than_a_beat_ago_are_not_renewed_yet() -> None:
    store = FakeStore({"young": True, "old": True})
    dispatcher = Dispatcher(store, None, Settings(), clock=None)  # type: ignore[arg-type]  # a fake store; no mailer or clock needed
    now = time.monotonic()
    dispatcher.in_flight["young"] = InFlight("young", "claim-young", leased_at=now - dispatcher.heartbeat_s / 2)
    dispatcher.in_flight["old"] = old = InFlight("old", "claim-old", leased_at=now - dispatcher.heartbeat_s)

    assert await dispatcher.renew_claims() == 1
    assert [n for n, _, _ in store.renewed] == ["old"] and old.leased_at >= now
    assert await dispatcher.renew_claims() == 0  # renewed just now: not again until a beat later


async def test_no_claims_no_writes() -> None:
    store = FakeStore({})
    assert await Dispatcher(store, None, Settings(), clock=None).renew_claims() == 0  # type: ignore[arg-type]  # a fake store; no mailer or clock needed
    assert store.renewed == []


@pytest.mark.parametrize("interrupted", range(4))
def test_steps_by_interruptions(interrupted: int) -> None:
    doc = pending()
    for n in range(interrupted + 1):
        doc = claimed(doc, n)
    expected = Step.SEND if interrupted == 0 else Step.RESEND if interrupted <= MAX_INTERRUPTED else Step.GIVE_UP
    assert next_step(doc) is expected
