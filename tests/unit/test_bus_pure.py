"""The bus's pure parts: queue names, failure headers, log-safe error text, dead-letter views."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from pydantic import BaseModel, EmailStr, ValidationError

from shared.auth import Principal, Role
from shared.bus import PermanentError
from shared.deadletters import REPLAY_ID_HEADER, ReplayRequest, dead_letter, replay_decision, who
from shared.queues import (
    QueueNames,
    attempts_so_far,
    dead_headers,
    error_text,
    failure_headers,
    forwarded_headers,
    header_int,
    is_permanent,
    loggable,
)


def test_queue_names():
    names = QueueNames("t1.refunds", (50, 100))
    assert (names.main, names.dead, names.retry(2)) == ("t1.refunds.inbox", "t1.refunds.dead", "t1.refunds.retry.2")
    assert names.all == ["t1.refunds.inbox", "t1.refunds.retry.1", "t1.refunds.retry.2", "t1.refunds.dead"]


def test_failure_headers_remember_the_first_origin_and_drop_broker_headers():
    first = failure_headers(
        {"traceparent": "00-ab", "x-death": [{}]}, routing_key="return.received", exchange="returns.events"
    )
    assert first == {
        "traceparent": "00-ab",
        "x-original-routing-key": "return.received",
        "x-original-exchange": "returns.events",
    }
    # Back from a retry queue the message comes via the default exchange; the origin stays.
    again = failure_headers({**first, "x-attempt": 1, "x-first-death-queue": "q"}, routing_key="q.events", exchange="")
    assert again["x-original-routing-key"] == "return.received" and again["x-original-exchange"] == "returns.events"
    assert "x-first-death-queue" not in again


def test_dead_headers_record_error_attempts_and_time():
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    headers = dead_headers(
        {"x-attempt": 2, "x-last-error": "e", "x-original-routing-key": "k"}, error="boom", attempts=3, at=at
    )
    assert headers == {
        "x-original-routing-key": "k",
        "x-error": "boom",
        "x-attempts": 3,
        "x-failed-at": "2026-03-01T12:00:00+00:00",
    }


def test_error_text_is_truncated():
    assert error_text(ValueError("x" * 5000), limit=100).startswith("ValueError: xxx")
    assert len(error_text(ValueError("x" * 5000), limit=100)) == 100


def test_loggable_never_quotes_validation_input():
    class Buyer(BaseModel):
        email: EmailStr

    try:
        Buyer(email="not-an-address jane@example.com")
    except ValidationError as exc:
        assert "jane" not in loggable(exc) and "ValidationError" in loggable(exc)
    assert loggable(RuntimeError("gateway timeout")) == "RuntimeError: gateway timeout"


def test_header_int_tolerates_missing_and_garbage():
    assert header_int(None, "x-attempt") == 0
    assert header_int({"x-attempt": "2"}, "x-attempt") == 2
    assert header_int({"x-attempt": "two"}, "x-attempt") == 0
    assert forwarded_headers(None) == {}


def test_dead_letter_view_of_a_parked_and_a_broker_dead_lettered_message():
    parked = SimpleNamespace(
        message_id="e-1",
        type="return.received",
        body=b'{"a":1}',
        headers={
            "x-error": "RuntimeError: boom",
            "x-attempts": 3,
            "x-failed-at": "2026-03-01T12:00:00+00:00",
            "x-original-routing-key": b"return.received",
        },
    )
    view = dead_letter(parked)
    assert (view.id, view.attempts, view.error, view.original_routing_key) == (
        "e-1",
        3,
        "RuntimeError: boom",
        "return.received",
    )
    assert view.failed_at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC) and view.body == '{"a":1}'

    by_broker = SimpleNamespace(
        message_id="e-2", type=None, body=b"\xff", headers={"x-death": [{"reason": "delivery_limit"}]}
    )
    view = dead_letter(by_broker)
    assert view.error == "dead-lettered by broker: delivery_limit" and view.attempts == 0 and view.failed_at is None


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, 0),
        (0, 0),
        (1, 1),
        (2, 2),
        ("2", 2),
        (b"1", 1),
        (-5, 0),
        ("-5", 0),  # forged: would name a retry queue that does not exist
        (10**9, 3),
        ("99999999999999999999", 3),
        ("two", 0),
        (2.5, 0),
        (True, 0),
        ([1], 0),
        ({"n": 1}, 0),
    ],
)
def test_attempt_header_is_clamped_untrusted_input(value, expected):
    headers = {} if value is None else {"x-attempt": value}
    assert attempts_so_far(headers, retries=3) == expected
    assert attempts_so_far(None, retries=3) == 0


def test_only_failures_a_retry_cannot_cure_are_permanent():
    class Model(BaseModel):
        amount: int

    try:
        Model.model_validate({"amount": "lots"})
    except ValidationError as exc:
        assert is_permanent(exc)
    assert is_permanent(PermanentError("unknown currency"))
    assert not is_permanent(RuntimeError("gateway timeout")) and not is_permanent(TimeoutError())


def test_replay_decision_once_per_call():
    decide = dict(replay_id="r-1", wanted=None, replayed={})
    assert replay_decision("e-1", "d1", {}, **decide) == "replay"
    # sent back by this very call and parked again: left alone
    assert replay_decision("e-1", "d1", {REPLAY_ID_HEADER: b"r-1"}, **decide) == "keep"
    assert replay_decision("e-1", "d1", {REPLAY_ID_HEADER: "r-0"}, **decide) == "replay"  # an earlier call's
    done = dict(replay_id="r-1", wanted=None, replayed={"e-1": "d1"})
    assert replay_decision("e-1", "d1", None, **done) == "duplicate"
    assert replay_decision("e-1", "other body", None, **done) == "keep"  # same id, not the same message
    assert replay_decision("", "d1", None, replay_id="r-1", wanted=None, replayed={"": "d1"}) == "replay"  # no id
    only = dict(replay_id="r-1", wanted={"e-2"}, replayed={})
    assert replay_decision("e-1", "d1", None, **only) == "keep"
    assert replay_decision("e-2", "d2", None, **only) == "replay"


def test_who_logs_role_and_subject_only():
    agent = Principal(subject="a-7", role=Role.AGENT, claims={"sub": "a-7", "email": "jane@example.com"})
    assert who(agent) == {"role": "agent", "subject": "a-7"}
    assert who("agent-7") == {"role": None, "subject": None}


def test_a_replay_request_with_a_misspelt_field_is_refused_not_read_as_replay_all():
    assert ReplayRequest.model_validate({}).ids is None  # all, as documented
    with pytest.raises(ValidationError, match="message_ids"):
        ReplayRequest.model_validate({"message_ids": ["m-1"]})
