"""SMTP delivery: the MIME message of a notification, one send attempt, and what its failure means.

4xx replies, refused or dropped connections and timeouts are transient (try again later); 5xx
replies are permanent, except authentication trouble, which is our configuration, not the
recipient, and is worth retrying once an operator fixes it.
"""
from __future__ import annotations

import email.utils
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

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
    kind = "transient" if code is None or 400 <= code < 500 else "permanent"
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
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage, recipient: str) -> Outcome:
        s = self.settings
        try:
            _, reply = await aiosmtplib.send(
                message, recipients=[recipient], hostname=s.smtp_host, port=s.smtp_port,
                username=s.smtp_username, password=s.smtp_password, use_tls=s.smtp_tls == "tls",
                start_tls=s.smtp_tls == "starttls",
                validate_certs=s.smtp_validate_certs, timeout=s.smtp_timeout_s)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an outcome to record
            return classify(exc)
        return Outcome("sent", 250, clean_error(reply))
