"""SMTP delivery: the MIME message of a notification, one send attempt, and what its failure means.

4xx replies, refused or dropped connections and timeouts are transient (try again later); 5xx
replies are permanent, except authentication trouble, which is our configuration, not the
recipient, and is worth retrying once an operator fixes it.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any, Literal

import aiosmtplib

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
    message.set_content(doc["text"])
    message.add_alternative(doc["html"], subtype="html")
    # After the parts: set_content() drops every Content-* header set before it.
    message["Content-Language"] = doc["locale"]
    # The default boundary is random; "==" never occurs in quoted-printable or base64 lines.
    message.set_boundary(f"=={doc['_id']}.{doc['generation']}.alt==")
    return message


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

    async def send(self, message: EmailMessage, recipient: str) -> Outcome:
        client: aiosmtplib.SMTP | None = None
        try:
            client = await self._connection()
            _, reply = await client.send_message(message, recipients=[recipient])
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
