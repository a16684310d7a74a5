"""The bus's queues and what a failed message carries: names, queue arguments, headers, error text.

Pure parts of shared/bus.py (no I/O), also used by the dead-letter tools (shared/deadletters.py),
the webhook deliveries and the bench's queue checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.rules import PermanentError

ERROR_TEXT_LIMIT = 1000
# Set on a message the service parked itself from a queue other than its inbox: a replay returns it there.
PARKED_FROM = "x-parked-from"
# A message that keeps killing its consumer (never acked, never failed cleanly) is dead-lettered by
# the broker after this many deliveries instead of looping forever.
DELIVERY_LIMIT = 20
# Headers the broker owns; copying them onto a new publish confuses (or is refused by) RabbitMQ.
_BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count")


def is_permanent(exc: BaseException) -> bool:
    """A failure that would fail the same way on every retry: the event's data failing a pydantic
    model (shared.messaging validates `event.data` before the handler runs), or a PermanentError."""
    return isinstance(exc, PermanentError | ValidationError)


class Unroutable(Exception):
    """The broker returned the message: no queue is bound to its type on that exchange."""

    def __init__(self, event_id: str, event_type: str, exchange: str) -> None:
        super().__init__(f"event {event_id} of type {event_type!r} is unroutable on {exchange!r}")
        self.event_id, self.event_type, self.exchange = event_id, event_type, exchange


@dataclass(frozen=True)
class QueueNames:
    base: str
    retry_delays_ms: tuple[int, ...]

    @property
    def main(self) -> str:
        return f"{self.base}.inbox"

    @property
    def dead(self) -> str:
        return f"{self.base}.dead"

    def retry(self, attempt: int) -> str:
        """Queue holding a message before its `attempt`-th retry (1-based)."""
        return f"{self.base}.retry.{attempt}"

    @property
    def all(self) -> list[str]:
        return [self.main, *(self.retry(n) for n in range(1, len(self.retry_delays_ms) + 1)), self.dead]


def queue_arguments(queue_type: str, limit: tuple[str, int], *, dead_letter_to: str) -> dict[str, Any]:
    """A queue of `queue_type` that, at its `limit` (`x-message-ttl`: the message's time in it;
    `x-delivery-limit`: its deliveries), dead-letters through the default exchange to `dead_letter_to`."""
    name, value = limit
    return {
        "x-queue-type": queue_type,
        name: value,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead_letter_to,
    }


def error_text(exc: BaseException, limit: int = ERROR_TEXT_LIMIT) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def loggable(exc: BaseException) -> str:
    """Error text safe for logs: validation errors quote their input (buyers' emails), so only
    their type is logged; the full text goes to the dead-letter headers operators read."""
    if isinstance(exc, ValidationError):
        return f"{type(exc).__name__} ({exc.error_count()} errors)"
    return error_text(exc, 300)


def header_int(headers: Mapping[str, Any] | None, name: str) -> int:
    try:
        return int((headers or {}).get(name) or 0)
    except (TypeError, ValueError):
        return 0


def attempts_so_far(headers: Mapping[str, Any] | None, retries: int) -> int:
    """Handler runs recorded in `x-attempt`, read as untrusted input: clamped to 0..`retries`, so a
    forged value can neither loop a message (negative) nor skip past the retry queues; a value that
    is not an integer counts as 0 (the bus writes its own value on the next failure)."""
    value = (headers or {}).get("x-attempt")
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, bool) or not isinstance(value, int | str):
        return 0
    try:
        number = int(value)
    except ValueError:
        return 0
    return min(max(number, 0), retries)


def forwarded_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (headers or {}).items() if not k.startswith(_BROKER_HEADERS)}


def failure_headers(
    headers: Mapping[str, Any] | None, *, routing_key: str | None, exchange: str | None
) -> dict[str, Any]:
    """Headers for forwarding a failed message; remembers where it came from the first time."""
    out = forwarded_headers(headers)
    out.setdefault("x-original-routing-key", routing_key or "")
    out.setdefault("x-original-exchange", exchange or "")
    return out


def dead_headers(headers: dict[str, Any], *, error: str, attempts: int, at: datetime) -> dict[str, Any]:
    out = {k: v for k, v in headers.items() if k not in ("x-attempt", "x-last-error")}
    return out | {"x-error": error, "x-attempts": attempts, "x-failed-at": at.isoformat()}
