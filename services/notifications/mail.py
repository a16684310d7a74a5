"""SMTP delivery: the MIME message of a notification, one send attempt, and what its failure means.

4xx replies, refused or dropped connections and timeouts are transient (try again later); 5xx
replies are permanent, except authentication trouble, which is our configuration, not the
recipient, and is worth retrying once an operator fixes it.
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import re
import time
from email.contentmanager import _encode_text  # type: ignore[attr-defined]  # set_content's own encoder
from email.headerregistry import Address
from email.message import EmailMessage
from functools import lru_cache
from typing import Any, Literal

import aiosmtplib
from aiosmtplib.email import extract_sender

from services.notifications.domain import Outcome, clean_error, message_id
from services.notifications.settings import Settings


def build_message(doc: dict[str, Any], settings: Settings) -> EmailMessage:
    """Same notification and generation -> same headers and body, hence the same email."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = Address(addr_spec=doc["recipient_email"])
    message["Subject"] = doc["subject"]
    message["Date"] = email.utils.format_datetime(doc["queued_at"])
    message["Message-ID"] = message_id(doc["_id"], doc["generation"], settings.message_id_domain)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Notification-Id"] = doc["_id"]
    if doc.get("traceparent"):  # the trace of the event that caused the email (W3C, shared.tracing)
        message["traceparent"] = doc["traceparent"]
    message.set_content(doc["text"])
    message.add_alternative(doc["html"], subtype="html")
    # After the parts: set_content() drops every Content-* header set before it.
    message["Content-Language"] = doc["locale"]
    # The default boundary is random; "==" never occurs in quoted-printable or base64 lines.
    message.set_boundary(f"=={doc['_id']}.{doc['generation']}.alt==")
    return message


# What aiosmtplib flattens a message with when the server speaks 8BITMIME and no address needs SMTPUTF8.
_WIRE = email.policy.SMTP
_LINE = 78  # _WIRE.max_line_length
# Header values that fold to `Name: value` unchanged: printable ASCII words, single spaces, no encoded
# word; anything else goes through the email package's header machinery.
_PLAIN_VALUE = re.compile(r"[!-~]+(?: [!-~]+)*")
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_PLAIN_BOUNDARY = re.compile(r"[A-Za-z0-9_.=-]+")
_PLAIN_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_MULTIPART = "Content-Type: multipart/alternative;"
_NEWLINES = re.compile(r"\r\n|\r|\n")


def _header(name: str, value: Any) -> str:
    """`name: value` folded for the wire exactly as EmailMessage + aiosmtplib's generator fold it."""
    if isinstance(value, str) and "=?" not in value and len(name) + 2 + len(value) <= _LINE:
        if _PLAIN_VALUE.fullmatch(value):
            return f"{name}: {value}\r\n"
    folded: str = _WIRE.header_factory(name, value).fold(policy=_WIRE)
    return folded


@lru_cache(maxsize=8)
def _fixed_header(name: str, value: str) -> str:
    return _header(name, value)


@lru_cache(maxsize=8)
def envelope_sender(mail_from: str) -> str | None:
    """The MAIL FROM address aiosmtplib takes from the From header."""
    message = EmailMessage()
    message["From"] = mail_from
    return extract_sender(message)


def _part(subtype: str, content: str, extra: str = "") -> str:
    # As MIMEPart.set_content(str) encodes it (EmailMessage's default policy), lines then ending in CRLF.
    cte, payload = _encode_text(content, "utf-8", None, email.policy.default)
    body = _NEWLINES.sub("\r\n", payload)
    return f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n{extra}\r\n{body}'


def message_bytes(doc: dict[str, Any], settings: Settings) -> bytes | None:
    """The bytes aiosmtplib sends for `build_message(doc, settings)` to a server that speaks 8BITMIME
    when no address needs SMTPUTF8, built without the email package's per-header parsing (most of
    this service's CPU). None when the email is not of the plain shape this covers: send the
    EmailMessage then. tests/unit/notifications check it against the EmailMessage, byte for byte.
    """
    recipient = doc["recipient_email"]
    boundary = f"=={doc['_id']}.{doc['generation']}.alt=="
    boundary_line = f' boundary="{boundary}"'
    if (
        not _PLAIN_ADDRESS.fullmatch(recipient)
        or len(recipient) + 4 > _LINE
        or not _PLAIN_BOUNDARY.fullmatch(boundary)
        or len(boundary_line) > _LINE
        or len(_MULTIPART) + len(boundary_line) <= _LINE  # would not be folded
        or not _PLAIN_DOMAIN.fullmatch(settings.message_id_domain)
        or not settings.mail_from.isascii()
        # EmailMessage refuses header values with line breaks: let it.
        or any(c in value for value in (settings.mail_from, doc["subject"]) for c in "\r\n")
    ):
        return None
    text = _part("plain", doc["text"])
    html = _part("html", doc["html"], "MIME-Version: 1.0\r\n")  # add_alternative()'s part has its own
    headers = (
        _fixed_header("From", settings.mail_from)
        + f"To: {recipient}\r\n"
        + _header("Subject", doc["subject"])
        + _header("Date", email.utils.format_datetime(doc["queued_at"]))
        + _header("Message-ID", message_id(doc["_id"], doc["generation"], settings.message_id_domain))
        + "Auto-Submitted: auto-generated\r\n"
        + _header("X-Notification-Id", doc["_id"])
        + (_header("traceparent", doc["traceparent"]) if doc.get("traceparent") else "")
        + "MIME-Version: 1.0\r\n"
        + f"{_MULTIPART}\r\n{boundary_line}\r\n"
        + _fixed_header("Content-Language", doc["locale"])
    )
    flat = f"{headers}\r\n--{boundary}\r\n{text}\r\n--{boundary}\r\n{html}\r\n--{boundary}--\r\n"
    return flat.encode("ascii", "surrogateescape")


def _code_outcome(code: int | None, text: str) -> Outcome:
    kind: Literal["transient", "permanent"] = "transient" if code is None or 400 <= code < 500 else "permanent"
    return Outcome(kind, code, clean_error(f"{code} {text}" if code else text))


def classify(exc: BaseException) -> Outcome:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients[0] if exc.recipients else None
        return _code_outcome(refused.code if refused else None, refused.message if refused else str(exc))
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return Outcome("transient", exc.code, clean_error(f"{exc.code} authentication failed: {exc.message}"))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _code_outcome(exc.code, exc.message)
    # Connection refused/reset, timeouts, disconnects, TLS not offered: the server, not the email.
    return Outcome("transient", None, clean_error(f"{type(exc).__name__}: {exc}"))


class Mailer:
    """SMTP transactions over a few reused connections (at most one per sender in flight).

    `send` answers as soon as the server answered the data: the caller records the outcome at once.
    The connection then goes back to the pool for the next email instead of QUIT and a new
    connect + EHLO each time. A connection that failed in any way is dropped, never reused; one idle
    for a while is checked with NOOP first (servers drop idle clients), and one idle for longer than
    IDLE_LIMIT_S is closed with QUIT.
    """

    CHECK_AFTER_S = 2.0
    IDLE_LIMIT_S = 60.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # (connection, when it was last used)
        self._goodbyes: set[asyncio.Task[None]] = set()

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password,
            use_tls=s.smtp_tls == "tls",
            start_tls=s.smtp_tls == "starttls",
            validate_certs=s.smtp_validate_certs,
            timeout=s.smtp_timeout_s,
        )

    async def _connection(self) -> aiosmtplib.SMTP:
        """An idle connection known to work, else a new one."""
        while self._idle:
            client, used = self._idle.pop()
            idle = time.monotonic() - used
            if not client.is_connected or idle > self.IDLE_LIMIT_S:
                self._goodbye(client)
                continue
            if idle > self.CHECK_AFTER_S:
                try:
                    await client.noop()
                except Exception:  # noqa: BLE001 - the server dropped it: take another
                    client.close()
                    continue
            return client
        client = self._client()
        await client.connect()
        return client

    async def send(self, message: EmailMessage | dict[str, Any], recipient: str) -> Outcome:
        """Send `message`: an EmailMessage, or a notification document (see `_transact`)."""
        data: bytes | None = None
        if isinstance(message, dict):
            data = message_bytes(message, self.settings)
            if data is None:  # built here, as before: an email it cannot build is not an SMTP outcome
                message = build_message(message, self.settings)
        client: aiosmtplib.SMTP | None = None
        try:
            client = await self._connection()
            _, reply = await self._transact(client, message, data, recipient)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an outcome to record
            if client is not None:
                client.close()
            return classify(exc)
        except BaseException:  # cancelled (the claim was lost): drop the connection, mid-dialogue or not
            if client is not None:
                client.close()
            raise
        if len(self._idle) < self.settings.dispatch_workers:
            self._idle.append((client, time.monotonic()))
        else:
            self._goodbye(client)
        return Outcome("sent", 250, clean_error(reply))

    async def _transact(
        self, client: aiosmtplib.SMTP, message: EmailMessage | dict[str, Any], data: bytes | None, recipient: str
    ) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        """What `client.send_message(build_message(doc))` does, sending `data` (`message_bytes(doc)`)
        where they are the same bytes: the server speaks 8BITMIME, no address needs SMTPUTF8."""
        if isinstance(message, dict):
            doc = message
            await client._ehlo_or_helo_if_needed()  # as send_message does, before looking at extensions
            sender = envelope_sender(self.settings.mail_from)
            if data and client.supports_extension("8bitmime") and sender and sender.isascii() and recipient.isascii():
                return await client.sendmail(sender, [recipient], data, mail_options=["BODY=8BITMIME"])
            message = build_message(doc, self.settings)
        return await client.send_message(message, recipients=[recipient])

    def _goodbye(self, client: aiosmtplib.SMTP) -> None:
        """QUIT in the background: nothing waits for the server's 221."""
        goodbye = asyncio.create_task(self._quit(client))
        self._goodbyes.add(goodbye)
        goodbye.add_done_callback(self._goodbyes.discard)

    async def _quit(self, client: aiosmtplib.SMTP) -> None:
        try:
            if client.is_connected:
                await client.quit()
        except Exception:  # noqa: BLE001, S110 - every email on it is recorded; a failed QUIT changes nothing
            pass
        finally:
            client.close()

    async def close(self) -> None:
        """QUIT the idle connections and let the QUITs in flight finish (bounded by the SMTP timeout)."""
        idle, self._idle = self._idle, []
        for client, _ in idle:
            self._goodbye(client)
        if self._goodbyes:
            await asyncio.wait(self._goodbyes, timeout=self.settings.smtp_timeout_s)
