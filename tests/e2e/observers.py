"""What the outside world sees of the platform in an e2e run: real servers and clients of the harness.

Mailbox        an SMTP server (aiosmtpd) the notifications service sends to, keeping messages in memory
EventTap       an independent AMQP subscriber bound with `#` to the stack's events exchange
StripeRecorder an HTTP proxy in front of stripe-mock that records every gateway call
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import aio_pika
from aiosmtpd.controller import Controller

from tests.ports import free_port

# ---- SMTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Email:
    """One message as the SMTP server received it."""

    index: int
    mail_from: str
    rcpt_tos: tuple[str, ...]
    to: str
    subject: str
    message_id: str
    notification_id: str
    language: str
    content_types: tuple[str, ...]
    text: str
    html: str

    @property
    def recipient(self) -> str:
        return self.rcpt_tos[0] if len(self.rcpt_tos) == 1 else ",".join(self.rcpt_tos)


class _Collector:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd API
        self.mailbox._add(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class Mailbox:
    """A real SMTP server (aiosmtpd, its own thread) keeping every message in memory."""

    def __init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self._emails: list[Email] = []
        self._controller = Controller(_Collector(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> Mailbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        if getattr(self._controller, "_thread", None) is not None:
            self._controller.stop()

    def _add(self, mail_from: str, rcpt_tos: tuple[str, ...], raw: bytes) -> None:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        text = html = ""
        types = []
        for part in message.walk():
            if part.is_multipart():
                continue
            types.append(part.get_content_type())
            if part.get_content_type() == "text/plain":
                text = part.get_content()
            elif part.get_content_type() == "text/html":
                html = part.get_content()
        with self._lock:
            self._emails.append(
                Email(
                    index=len(self._emails),
                    mail_from=mail_from,
                    rcpt_tos=rcpt_tos,
                    to=str(message["To"]),
                    # Unfolded as a mail client shows it (a long Subject is folded onto its own line).
                    subject=" ".join(str(message["Subject"]).split()),
                    message_id=str(message["Message-ID"]),
                    notification_id=str(message["X-Notification-Id"]),
                    language=str(message["Content-Language"]),
                    content_types=tuple(types),
                    text=text,
                    html=html,
                )
            )

    def all(self) -> list[Email]:
        with self._lock:
            return list(self._emails)

    def to(self, *addresses: str) -> list[Email]:
        wanted = set(addresses)
        return [mail for mail in self.all() if wanted & set(mail.rcpt_tos)]


# ---- AMQP -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One event as the independent subscriber received it (raw CloudEvents JSON)."""

    index: int
    routing_key: str
    message_id: str | None
    persistent: bool
    body: dict[str, Any]

    @property
    def type(self) -> str:
        return self.body["type"]

    @property
    def id(self) -> str:
        return self.body["id"]

    @property
    def subject(self) -> str | None:
        return self.body.get("subject")

    @property
    def sequence(self) -> int:
        return self.body.get("sequence", 0)

    @property
    def data(self) -> dict[str, Any]:
        return self.body["data"]

    def concerns_return(self, return_id: str) -> bool:
        return self.subject == return_id or (isinstance(self.data, dict) and self.data.get("return_id") == return_id)


class EventTap:
    """An exclusive queue bound with `#` to the stack's events exchange: everything, in arrival order."""

    def __init__(self, amqp_url: str, exchange: str) -> None:
        self.amqp_url, self.exchange = amqp_url, exchange
        self.events: list[Seen] = []
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None

    async def start(self) -> EventTap:
        self._connection = await aio_pika.connect_robust(
            self.amqp_url, timeout=10, client_properties={"connection_name": "e2e-tap"}
        )
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="#")
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.events.append(
            Seen(
                index=len(self.events),
                routing_key=message.routing_key or "",
                message_id=message.message_id,
                persistent=message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT,
                body=json.loads(message.body),
            )
        )

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def of_return(self, return_id: str, *, include_notifications: bool = False) -> list[Seen]:
        return [
            e
            for e in self.events
            if e.concerns_return(return_id) and (include_notifications or not e.type.startswith("notification."))
        ]

    def of_type(self, event_type: str) -> list[Seen]:
        return [e for e in self.events if e.type == event_type]

    def notifications_of(self, return_id: str) -> list[Seen]:
        return [e for e in self.events if e.type.startswith("notification.") and e.data.get("return_id") == return_id]


# ---- payment gateway --------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayCall:
    method: str
    path: str
    idempotency_key: str | None
    params: dict[str, str]
    status: int


class StripeRecorder:
    """Stripe's API as the refunds service sees it: stripe-mock behind a proxy that records each call.

    stripe-mock itself keeps no state, so the proxy is what can tell how many refunds were asked for.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.calls: list[GatewayCall] = []
        # Payment references whose refunds the card issuer refuses (402 card_declined) for now.
        self.declining: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="stripe-recorder")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StripeRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait forever for a loop that never ran
            self._server.shutdown()
        self._server.server_close()

    def refunds(self, refund_id: str | None = None) -> list[GatewayCall]:
        """POST /v1/refunds calls (optionally of one refund, by its metadata)."""
        with self._lock:
            calls = list(self.calls)
        return [
            c
            for c in calls
            if c.method == "POST"
            and c.path == "/v1/refunds"
            and (refund_id is None or c.params.get("metadata[refund_id]") == refund_id)
        ]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _proxy(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self._declined(body):
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "connection", "accept-encoding")
                }
                request = urllib.request.Request(
                    recorder.upstream + self.path, data=body or None, headers=headers, method=self.command
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:
                        status, payload, answer_headers = answer.status, answer.read(), answer.headers
                except urllib.error.HTTPError as exc:
                    status, payload, answer_headers = exc.code, exc.read(), exc.headers
                path = self.path.split("?")[0]
                params = dict(parse_qsl(body.decode())) if body else {}
                with recorder._lock:
                    recorder.calls.append(
                        GatewayCall(self.command, path, self.headers.get("Idempotency-Key"), params, status)
                    )
                self.send_response(status)
                for name in ("Content-Type", "Request-Id", "Stripe-Version"):
                    if answer_headers.get(name):
                        self.send_header(name, answer_headers[name])
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _declined(self, body: bytes) -> bool:
                """A refund of a payment in `declining`: answered 402 card_declined, as Stripe does."""
                params = dict(parse_qsl(body.decode())) if body else {}
                reference = params.get("payment_intent") or params.get("charge")
                if (
                    self.command != "POST"
                    or self.path.split("?")[0] != "/v1/refunds"
                    or reference not in recorder.declining
                ):
                    return False
                payload = json.dumps(
                    {"error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}}
                ).encode()
                with recorder._lock:
                    recorder.calls.append(
                        GatewayCall("POST", "/v1/refunds", self.headers.get("Idempotency-Key"), params, 402)
                    )
                self.send_response(402)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return True

            do_GET = do_POST = do_DELETE = _proxy  # noqa: N815 - http.server's naming

        return Handler
