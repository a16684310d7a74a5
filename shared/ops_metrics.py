"""Operational metrics (docs/operations.md "Metrics"): what an operator alerts on, in Prometheus.

Two kinds, so the hot path stays in memory:
- counters and histograms (events consumed, handler latency, emails, transitions, refunds) are
  updated where the thing happens, through label children cached here (no store command, no lock
  beyond prometheus_client's own);
- gauges that need the store or the broker (outbox backlog, dead-letter depth, claims past their
  deadline) are refreshed when /metrics is scraped, each source at most once per `REFRESH_S`, by
  the async sources that the relay, the bus and the services `watch()` while they run.
Gauges carry a `service` label: one process may run several services' apps (the tests do).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Container, Iterable
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)

PREFIX = "returns_platform_"
REFRESH_S = 10.0  # a scrape every 15-30 s sees values at most this old; faster scrapes cost nothing more
SOURCE_TIMEOUT_S = 2.0  # a source that cannot answer leaves its gauge as it was (readyz tells why)
OUTBOX_SCAN_LIMIT = 10_000  # pending documents one refresh reads at most (normally: none)
OTHER = "<other>"  # label of a type no handler subscribes to (a forged type must not grow the labels)
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_EMAIL_LATENCY = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)

EVENTS_CONSUMED = Counter(
    PREFIX + "events_consumed", "Events a consumer finished with: ok, retried later, or parked.", ["type", "outcome"]
)
HANDLER_SECONDS = Histogram(PREFIX + "handler_seconds", "Time an event handler ran.", ["type"], buckets=_LATENCY)
OUTBOX_PENDING = Gauge(PREFIX + "outbox_pending", "Committed events not yet published.", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    PREFIX + "outbox_oldest_pending_age_seconds", "Age of the oldest unpublished event (0 when none).", ["service"]
)
DEAD_LETTER_DEPTH = Gauge(PREFIX + "dead_letter_depth", "Messages parked in the dead-letter queue.", ["service"])
EMAILS = Counter(PREFIX + "emails", "Email attempts: sent, deferred (retried later), failed.", ["template", "outcome"])
EVENT_TO_EMAIL = Histogram(
    PREFIX + "event_to_email_seconds",
    "From the event's time to the email accepted by SMTP.",
    ["template"],
    buckets=_EMAIL_LATENCY,
)
TRANSITIONS = Counter(PREFIX + "transitions", "State transitions committed, by event type.", ["type"])
REFUNDS_PAID = Counter(PREFIX + "refunds_paid", "Refunds paid (issued).", ["currency"])
REFUNDED_MINOR_UNITS = Counter(PREFIX + "refunded_minor_units", "Money refunded, in minor units.", ["currency"])
CLAIMS_PAST_DEADLINE = Gauge(
    PREFIX + "claims_open_past_deadline", "Open claims whose response deadline has passed.", ["service"]
)
WEBHOOK_DELIVERIES = Counter(PREFIX + "webhook_deliveries", "Webhook delivery attempts by outcome.", ["outcome"])

_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, cached: the lookup, not the increment, is the costly part."""
    key = (id(metric), *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


# ---- hot path: in memory only ----------------------------------------------------------------


def consumed(event_type: str | None, outcome: str, known: Container[str] | None = None) -> None:
    """A consumer is done with an event: `ok`, `retried` or `parked`. `known`: the handled types."""
    label = event_type if event_type and (known is None or event_type in known) else OTHER
    _child(EVENTS_CONSUMED, label, outcome).inc()


def timed(event_type: str, handler: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """`handler`, observing how long each run takes (failed runs too) in `handler_seconds{type}`."""
    histogram = _child(HANDLER_SECONDS, event_type)

    async def run(event: Any) -> None:
        start = time.perf_counter()
        try:
            await handler(event)
        finally:
            histogram.observe(time.perf_counter() - start)

    return run


def transitions(event_types: Iterable[str]) -> None:
    """Events just committed with their state change (returns, disputes)."""
    for event_type in event_types:
        _child(TRANSITIONS, event_type).inc()


def email(template: str, outcome: str, event_time: datetime | None = None, now: datetime | None = None) -> None:
    """An email attempt recorded: `sent` (with the event->email latency), `deferred` or `failed`."""
    _child(EMAILS, template, outcome).inc()
    if outcome == "sent" and event_time is not None and now is not None:
        _child(EVENT_TO_EMAIL, template).observe(max((now - event_time).total_seconds(), 0.0))


def refund_paid(currency: str, minor_units: int) -> None:
    _child(REFUNDS_PAID, currency).inc()
    if minor_units > 0:
        _child(REFUNDED_MINOR_UNITS, currency).inc(minor_units)


# ---- gauges refreshed on scrape ----------------------------------------------------------------

Source = Callable[[], Awaitable[None]]
_sources: dict[int, Source] = {}
_refreshed: dict[int, float] = {}
_lock = asyncio.Lock()


def watch(owner: object, source: Source) -> None:
    """Refresh gauges with `source()` on scrape while `owner` runs (until `unwatch(owner)`)."""
    _sources[id(owner)] = source
    _refreshed.pop(id(owner), None)


def unwatch(owner: object) -> None:
    _sources.pop(id(owner), None)
    _refreshed.pop(id(owner), None)


async def refresh(max_age: float = REFRESH_S) -> None:
    """Run every source not run within `max_age` seconds (concurrently, each bounded)."""
    async with _lock:  # concurrent scrapes share one refresh
        now = time.monotonic()
        due = [(key, source) for key, source in _sources.items() if now - _refreshed.get(key, -1e9) >= max_age]
        results = await asyncio.gather(
            *(asyncio.wait_for(source(), SOURCE_TIMEOUT_S) for _, source in due), return_exceptions=True
        )
        for (key, _), result in zip(due, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("metrics source failed", extra={"error": f"{type(result).__name__}: {result}"})
            else:
                _refreshed[key] = now


def outbox_source(service: str, collections: Iterable[Any], clock: Any) -> Source:
    """Pending events and the oldest one's age across `collections` (the indexed `outbox_pending`)."""
    targets = list(collections)

    async def source() -> None:
        pending, oldest = 0, None
        for collection in targets:
            async for doc in collection.find({"outbox_pending": True}, {"outbox": 1}).limit(OUTBOX_SCAN_LIMIT):
                entries = doc.get("outbox") or []
                pending += len(entries)
                for entry in entries[:1]:  # in commit order: the first is the document's oldest
                    at = _event_time(entry)
                    oldest = at if at is not None and (oldest is None or at < oldest) else oldest
        OUTBOX_PENDING.labels(service).set(pending)
        age = 0.0 if oldest is None else max((clock.now() - oldest).total_seconds(), 0.0)
        OUTBOX_OLDEST_AGE.labels(service).set(age)

    return source


def _event_time(entry: dict[str, Any]) -> datetime | None:
    value = (entry.get("envelope") or {}).get("time")
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def dead_letter_source(bus: Any) -> Source:
    """The depth of the bus's dead-letter queue, read with a passive declare on a channel of its own."""

    async def source() -> None:
        async with bus.connection.channel(publisher_confirms=False) as channel:
            queue = await channel.declare_queue(bus.names.dead, passive=True, robust=False)
            DEAD_LETTER_DEPTH.labels(bus.service).set(queue.declaration_result.message_count or 0)

    return source
