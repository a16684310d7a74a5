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


@pytest.mark.parametrize("locale", ["en", "zh-CN", "de"])
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


def test_unusual_settings_or_line_breaks_fall_back_to_the_email_message() -> None:
    doc = docs("return.created", "en")[0]
    assert message_bytes(doc, Settings(message_id_domain="odd (domain)")) is None
    assert message_bytes(doc, Settings(mail_from="Retours <retours@exämple.com>")) is None
    assert message_bytes(doc | {"subject": "two\nlines"}, SETTINGS[0]) is None
    with pytest.raises(ValueError, match="linefeed"):
        build_message(doc | {"subject": "two\nlines"}, SETTINGS[0])


def test_the_envelope_sender_is_the_from_address() -> None:
    assert mail.envelope_sender("Marketplace Returns <returns@exämple.com>") == "returns@exämple.com"
    assert envelope_sender("Marketplace Returns <returns@marketplace.example>") == "returns@marketplace.example"


def test_the_line_limit_is_the_wire_policys() -> None:
    assert mail._LINE == email.policy.SMTP.max_line_length


class FakeClient:
    """Records what the Mailer hands an aiosmtplib client."""

    def __init__(self, extensions: set[str]) -> None:
        self.extensions, self.calls = extensions, []

    async def _ehlo_or_helo_if_needed(self) -> None:
        self.calls.append(("ehlo",))

    def supports_extension(self, name: str) -> bool:
        return name.lower() in self.extensions

    async def sendmail(self, sender: str, recipients: list[str], data: bytes, mail_options: list[str]) -> tuple:
        self.calls.append(("sendmail", sender, recipients, data, mail_options))
        return {}, "ok"

    async def send_message(self, message: object, recipients: list[str]) -> tuple:
        self.calls.append(("send_message", flatten_message(message), recipients))  # type: ignore[arg-type]
        return {}, "ok"


@pytest.mark.parametrize(
    ("extensions", "recipient", "fast"),
    [
        ({"8bitmime"}, "buyer@example.com", True),
        (set(), "buyer@example.com", False),  # a 7-bit server: aiosmtplib re-encodes, let it
        ({"8bitmime", "smtputf8"}, "ada@exämple.com", False),
        ({"8bitmime"}, '"odd local"@example.com', False),
    ],
)
async def test_the_mailer_sends_the_fast_bytes_only_where_send_message_would_send_the_same(
    extensions: set[str], recipient: str, fast: bool
) -> None:
    doc = docs("return.created", "en")[0] | {"recipient_email": recipient}
    client = FakeClient(extensions)
    data = mail.message_bytes(doc, SETTINGS[0])
    await mail.Mailer(SETTINGS[0])._transact(client, doc, data, recipient)  # type: ignore[arg-type]
    if fast:
        expected = flatten_message(build_message(doc, SETTINGS[0]))
        assert client.calls[-1] == (
            "sendmail",
            "returns@marketplace.example",
            [recipient],
            expected,
            ["BODY=8BITMIME"],
        )
    else:
        assert client.calls[-1][0] == "send_message" and client.calls[-1][2] == [recipient]
