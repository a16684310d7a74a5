"""A notification's life without I/O: retries, outcomes, the stable Message-ID, its events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiosmtplib
import pytest

from services.notifications.domain import (
    Outcome,
    after_attempt,
    applied,
    clean_error,
    message_id,
    new_notification,
    new_notification_id,
    notification_event,
    resend_update,
    retry_delay,
)
from services.notifications.mail import build_message, classify
from services.notifications.rendering import plan
from services.notifications.samples import sample_event
from services.notifications.settings import Settings

NOW = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
DELAYS = [1000, 5000, 30000]
LATER = Outcome("transient", 451, "451 try later")


def pending() -> dict:
    event = sample_event("return.created")
    return new_notification(event, event.typed(), plan(event)[0], NOW)


def test_a_new_notification_is_pending_and_due_now() -> None:
    doc = pending()
    assert doc["status"] == "pending" and doc["attempts"] == 0 and doc["next_attempt_at"] == NOW
    assert doc["recipient_role"] == "buyer" and doc["recipient_id"] == "b-1"
    assert doc["template"] == "buyer/return_requested" and doc["return_version"] == 1
    assert doc["_id"].startswith("ntf_")


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        ("return.created", {"return_id": "ret_sample1", "refund_id": None, "claim_id": None, "chargeback_id": None}),
        ("claim.filed", {"return_id": None, "refund_id": None, "claim_id": "clm_sample1", "chargeback_id": None}),
        ("chargeback.won", {"return_id": None, "refund_id": None, "claim_id": None, "chargeback_id": "cbk_sample1"}),
    ],
)
def test_a_notification_names_what_it_is_about_by_id_only(event_type: str, expected: dict) -> None:
    event = sample_event(event_type)
    for email in plan(event):
        doc = new_notification(event, event.typed(), email, NOW)
        assert {name: doc[name] for name in expected} == expected and doc["order_id"] == "ord-1001"
        assert doc["return_version"] == (1 if event_type == "return.created" else None)
        assert doc["event_type"] == event_type and doc["recipient_id"] == email.recipient.id


def test_a_claim_about_a_return_is_not_listed_with_the_returns_emails() -> None:
    event = sample_event("claim.filed")
    claim = event.typed().model_copy(update={"reason": "RETURN_NOT_REFUNDED", "return_id": "ret_sample1"})
    docs = [new_notification(event, claim, email, NOW) for email in plan(event, claim)]
    assert len(docs) == 2 and all(doc["return_id"] is None and doc["claim_id"] == "clm_sample1" for doc in docs)
    assert all("ret_sample1" in doc["text"] for doc in docs)  # the email itself names the return


def test_ids_sort_by_creation() -> None:
    assert new_notification_id(NOW) < new_notification_id(NOW + timedelta(milliseconds=1))


@pytest.mark.parametrize(("attempts", "expected"), [(1, 1000), (2, 5000), (3, 30000), (4, None)])
def test_retry_delays_grow_then_run_out(attempts: int, expected: int | None) -> None:
    delay = retry_delay(attempts, DELAYS)
    assert delay == (None if expected is None else timedelta(milliseconds=expected))


def test_success_records_the_message_id_and_announces_it() -> None:
    doc = pending()
    update, event_type = after_attempt(doc, Outcome("sent", 250, "OK queued"), "<m@x>", NOW, DELAYS)
    after = applied(doc, update)
    assert event_type == "notification.sent"
    assert after["status"] == "sent" and after["smtp_message_id"] == "<m@x>" and after["attempts"] == 1
    assert after["version"] == 2 and [a["outcome"] for a in after["attempt_log"]] == ["sent"]


def test_transient_failure_waits_longer_each_time_then_fails() -> None:
    doc = pending()
    for attempt, delay in enumerate(DELAYS, start=1):
        update, event_type = after_attempt(doc, LATER, "<m@x>", NOW, DELAYS)
        doc = applied(doc, update)
        assert event_type is None and doc["status"] == "pending" and doc["attempts"] == attempt
        assert doc["next_attempt_at"] == NOW + timedelta(milliseconds=delay)
    update, event_type = after_attempt(doc, LATER, "<m@x>", NOW, DELAYS)
    doc = applied(doc, update)
    assert event_type == "notification.failed" and doc["status"] == "failed" and doc["attempts"] == 4
    assert doc["error"] == "gave up after 4 attempts; last: 451 try later"


def test_permanent_failure_fails_at_once() -> None:
    rejected = Outcome("permanent", 550, "550 no such user")
    update, event_type = after_attempt(pending(), rejected, "<m>", NOW, DELAYS)
    assert event_type == "notification.failed"
    assert update["$set"]["status"] == "failed" and update["$set"]["error"] == "550 no such user"


def test_resend_starts_a_new_generation() -> None:
    update = resend_update(NOW, "agent-7")
    assert update["$set"]["status"] == "pending" and update["$set"]["attempts"] == 0
    assert update["$inc"] == {"generation": 1, "version": 1}


def test_events_carry_ids_never_the_address() -> None:
    doc = pending()
    update, event_type = after_attempt(doc, Outcome("sent", 250, "OK"), "<m@x>", NOW, DELAYS)
    event = notification_event(event_type, applied(doc, update), NOW)
    assert event.type == "notification.sent" and event.subject == doc["_id"] and event.sequence == 2
    assert event.data["recipient_id"] == "b-1" and event.data["smtp_message_id"] == "<m@x>"
    assert "example.com" not in event.to_json().decode().replace("<m@x>", "")
    assert "Ada" not in event.to_json().decode()


def test_errors_are_stripped_of_addresses() -> None:
    assert (
        clean_error("550 5.1.1 <ada@example.com>: Recipient\n unknown")
        == "550 5.1.1 <[redacted-email]>: Recipient unknown"
    )


def test_message_id_is_stable_per_generation() -> None:
    assert message_id("ntf_1", 0, "d.example") == message_id("ntf_1", 0, "d.example") == "<ntf_1.0@d.example>"
    assert message_id("ntf_1", 1, "d.example") != message_id("ntf_1", 0, "d.example")


def test_the_mime_message_has_both_parts_and_stable_headers() -> None:
    doc, settings = pending(), Settings(message_id_domain="n.example")
    first, again = build_message(doc, settings), build_message(doc, settings)
    assert first.as_bytes() == again.as_bytes()  # a re-send after a crash is the same email
    assert first["Message-ID"] == f"<{doc['_id']}.0@n.example>"
    assert first["To"] == "buyer@example.com" and first["Subject"] == doc["subject"]
    assert [part.get_content_type() for part in first.iter_parts()] == ["text/plain", "text/html"]
    assert "ret_sample1" in first.get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no such user", "a@b.c")]),
            "permanent",
            550,
        ),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(451, "greylisted", "a@b.c")]),
            "transient",
            451,
        ),
        (aiosmtplib.SMTPDataError(554, "rejected"), "permanent", 554),
        (aiosmtplib.SMTPDataError(452, "mailbox full"), "transient", 452),
        (aiosmtplib.SMTPSenderRefused(451, "try later", "x@y.z"), "transient", 451),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), "transient", 535),
        (aiosmtplib.SMTPConnectError("refused"), "transient", None),
        (aiosmtplib.SMTPServerDisconnected("gone"), "transient", None),
        (aiosmtplib.SMTPTimeoutError("slow"), "transient", None),
        (ConnectionRefusedError(111, "Connection refused"), "transient", None),
    ],
)
def test_smtp_failures_are_classified(exc: BaseException, kind: str, code: int | None) -> None:
    outcome = classify(exc)
    assert (outcome.kind, outcome.code) == (kind, code)
    assert "a@b.c" not in outcome.detail and "x@y.z" not in outcome.detail
