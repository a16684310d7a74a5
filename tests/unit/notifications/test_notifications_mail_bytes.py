"""The fast MIME builder sends exactly the bytes aiosmtplib would flatten from the EmailMessage."""

from __future__ import annotations

import email.policy
from datetime import UTC, datetime, timedelta, timezone

import pytest
from aiosmtplib.email import flatten_message

from services.notifications import mail
from services.notifications.decisions import SUBSCRIBED_TYPES
from services.notifications.domain import new_notification
from services.notifications.mail import build_message, envelope_sender, message_bytes
from services.notifications.rendering import plan
from services.notifications.samples import sample_event
from services.notifications.settings import Settings

NOW = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
SETTINGS = [Settings(), Settings(mail_from="returns@x.example", message_id_domain="n.example")]


def docs(event_type: str, locale: str) -> list[dict]:
    event = sample_event(event_type, locale=locale)
    return [new_notification(event, event.typed(), email, NOW) for email in plan(event)]


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
@pytest.mark.parametrize("event_type", sorted(SUBSCRIBED_TYPES))
def test_every_template_is_sent_byte_for_byte_as_before(event_type: str, locale: str) -> None:
    for doc in docs(event_type, locale):
        for settings in SETTINGS:
            assert message_bytes(doc, settings) == flatten_message(build_message(doc, settings))


@pytest.mark.parametrize(
    "change",
    [
        {"queued_at": NOW.replace(tzinfo=None)},  # read back naive from the store
        {"queued_at": NOW.astimezone(timezone(timedelta(hours=5, minutes=30)))},
        {"generation": 12345},
        {"subject": "A subject long enough to be folded onto a second line by the header machinery, surely"},
        {"subject": "Has an =?utf-8?q?encoded_word?= lookalike"},
        {"subject": "Ünïcode subject"},
        {"subject": "double  space\tand tab"},
        {"text": "a line far longer than seventy-eight characters " * 4 + "\n", "html": "<p>é</p>"},
        {"text": "no trailing newline", "html": "crlf\r\nand cr\rlines\n"},
        {"text": "ünïcode, short lines\nsecond\n", "html": "x" * 1000 + "\n"},
        {"recipient_email": "first.last+tag@sub.example.co.uk", "locale": "fr-FR"},
    ],
)
def test_edge_cases_match_the_email_package(change: dict) -> None:
    doc = docs("return.created", "en")[0] | change
    assert message_bytes(doc, SETTINGS[0]) == flatten_message(build_message(doc, SETTINGS[0]))


@pytest.mark.parametrize("recipient", ['"odd local"@example.com', "ünï@example.com", "a@" + "b" * 80 + ".example"])
def test_unusual_addresses_fall_back_to_the_email_message(recipient: str) -> None:
    doc = docs("return.created", "en")[0] | {"recipient_email": recipient}
    assert message_bytes(doc, SETTINGS[0]) is None


def test_the_envelope_sender_is_the_from_address() -> None:
    assert envelope_sender("Marketplace Returns <returns@marketplace.example>") == "returns@marketplace.example"


def test_the_line_limit_is_the_wire_policys() -> None:
    assert mail._LINE == email.policy.SMTP.max_line_length
