"""The delivery job: claims due deliveries (replica-safe, a lease), POSTs them signed, records each attempt.

A new delivery is claimed by `_id` the moment the consumer records it; a retry by `_id` when this
process's timer fires; anything else due (a crashed worker's claim after its lease, another
replica's retries, replays) by a poll every WEBHOOKS_POLL_MS. 2xx = delivered; anything else is
retried on `schedule.next_attempt` until the retry window ends, then failed. An endpoint whose
deliveries keep failing is disabled (`status: disabled`, a log line, the metric's `disabled`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import httpx

from services.notifications.claiming import RetryTimers, claim_on_slot
from services.notifications.settings import Settings
from services.notifications.webhooks import signing
from services.notifications.webhooks.models import WebhookDeliveryStatus, WebhookEndpointStatus
from services.notifications.webhooks.pinning import RefusedHost, Resolver, pinned_client
from services.notifications.webhooks.schedule import next_attempt
from services.notifications.webhooks.store import NEVER, WebhookStore
from services.notifications.webhooks.urls import BadUrl, check_shape, resolve
from shared import ops_metrics
from shared.clock import Clock, SystemClock
from shared.periodic import Periodic

log = logging.getLogger(__name__)

# Outcomes: delivered, retried, failed; disabled = an endpoint disabled (one registry: shared/ops_metrics.py).
DELIVERIES = ops_metrics.WEBHOOK_DELIVERIES
ERROR_LIMIT = 500


def signing_secrets(endpoint: dict[str, Any], now: datetime) -> list[str]:
    """The endpoint's secrets still valid at `now`, newest first."""
    return [s["secret"] for s in endpoint.get("secrets", []) if s.get("expires_at") is None or s["expires_at"] > now]


def _refusal(exc: BaseException) -> RefusedHost | None:
    """The pinning refusal behind a connection error, however deep httpx/httpcore wrapped it."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, RefusedHost):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


class DeliveryWorker:
    def __init__(self, store: WebhookStore, settings: Settings, clock: Clock, resolver: Resolver = resolve) -> None:
        self.store, self.settings, self.clock, self.resolver = store, settings, clock, resolver
        self.lease_clock = SystemClock()  # claims are operational time, never the movable business clock
        self.lease = timedelta(seconds=settings.webhooks_lease_s)
        self._slots = asyncio.Semaphore(settings.webhooks_workers)
        self._fresh: deque[str] = deque()
        self._loop = Periodic("webhooks-delivery", self._dispatch_due, settings.webhooks_poll_ms / 1000)
        self._next_scan = 0.0
        self._retries = RetryTimers(clock, self.wake)
        self._sending: set[asyncio.Task[None]] = set()
        self.http: httpx.AsyncClient | None = None

    def wake(self, fresh: Iterable[str] = (), *, scan: bool = False) -> None:
        """Look for work now: `fresh` deliveries by `_id`; `scan`: query for anything due too."""
        self._fresh.extend(fresh)
        if scan:
            self._next_scan = 0.0
        self._loop.wake()

    async def start(self) -> None:
        # No redirects: a receiver could otherwise bounce deliveries to an address registration refused;
        # connections go only to addresses checked as they connect (pinning.py: DNS rebinding).
        self.http = self.client()
        self._loop.start()

    def client(self) -> httpx.AsyncClient:
        return pinned_client(
            allow_private=self.settings.webhooks_allow_private,
            timeout=self.settings.webhooks_timeout_s,
            resolver=self.resolver,
        )

    async def stop(self) -> None:
        await self._loop.stop()
        self._retries.cancel_all()
        if self._sending:  # unfinished ones are claimed again after their lease
            await asyncio.wait(self._sending, timeout=self.settings.webhooks_timeout_s)
        if self.http is not None:
            await self.http.aclose()

    async def _dispatch_due(self) -> None:
        while (doc := await claim_on_slot(self._slots, self._claim_next)) is not None:
            task = asyncio.create_task(self._run(doc))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _claim_next(self) -> dict[str, Any] | None:
        now, lease_now = self.clock.now(), self.lease_clock.now()
        while self._fresh:
            doc = await self.store.claim(now, lease_now, self.lease, self._fresh.popleft())
            if doc is not None:
                return doc
        if time.monotonic() < self._next_scan:
            return None
        doc = await self.store.claim(now, lease_now, self.lease)
        if doc is None:
            self._next_scan = time.monotonic() + self.settings.webhooks_poll_ms / 1000
        return doc

    async def _run(self, doc: dict[str, Any]) -> None:
        try:
            await self.deliver(doc)
        except Exception:  # the store is away (a failed POST is recorded by deliver): the claim lapses, tried again
            log.exception("webhook attempt not recorded", extra={"delivery_id": doc["_id"]})
        finally:
            self._slots.release()
            self.wake()

    async def deliver(self, doc: dict[str, Any]) -> str:
        """One attempt of a claimed delivery; returns the status it ends in."""
        endpoint = await self.store.endpoint(doc["endpoint_id"])
        now = self.clock.now()
        if endpoint is None or endpoint["status"] != WebhookEndpointStatus.ENABLED:
            # Deleted (its deliveries go with it) or disabled meanwhile: held until replayed.
            status = WebhookDeliveryStatus.FAILED if endpoint is None else WebhookDeliveryStatus.HELD
            await self.store.settle(doc, {"$set": {"status": str(status), "claimed_until": NEVER, "updated_at": now}})
            return str(status)
        code, error, duration_ms = await self._post(endpoint, doc, now)
        first = doc.get("first_attempt_at") or now
        attempt = {"at": now, "status_code": code, "duration_ms": duration_ms, "error": error}
        ok = code is not None and 200 <= code < 300
        due = (
            None
            if ok
            else next_attempt(
                first,
                doc.get("tries", 0) + 1,
                now,
                self.settings.webhooks_retry_delays_s,
                self.settings.webhooks_retry_window_s,
            )
        )
        status = (
            WebhookDeliveryStatus.DELIVERED
            if ok
            else WebhookDeliveryStatus.PENDING
            if due
            else WebhookDeliveryStatus.FAILED
        )
        fields: dict[str, Any] = {
            "status": str(status),
            "first_attempt_at": first,
            "tries": doc.get("tries", 0) + 1,  # in this retry window (a replay starts a new one)
            "claimed_until": NEVER,
            "updated_at": now,
        }
        if due is not None:
            fields["next_attempt_at"] = due
        if not await self.store.settle(doc, {"$set": fields, "$push": {"attempts": attempt}}):
            # A replay (or another worker after the lease) took the delivery over: log the attempt, but
            # its outcome belongs to whoever holds it now, so a replay is never cleared by this result.
            await self.store.note_attempt(doc["_id"], attempt)
            log.warning("webhook claim lost before the outcome was recorded", extra={"delivery_id": doc["_id"]})
            return str(doc["status"])
        outcome = "delivered" if ok else "retried" if due else "failed"
        DELIVERIES.labels(outcome=outcome).inc()
        log.info(
            "webhook attempt",
            extra={
                "delivery_id": doc["_id"],
                "endpoint_id": endpoint["_id"],
                "event_id": doc["event_id"],
                "status_code": code,
                "outcome": outcome,
                "error": error,
            },
        )
        if due is not None:
            self._retries.at(doc["_id"], due)
        await self._account(endpoint, ok=ok, final=status == WebhookDeliveryStatus.FAILED, now=now)
        return str(status)

    async def _post(
        self, endpoint: dict[str, Any], doc: dict[str, Any], now: datetime
    ) -> tuple[int | None, str | None, int]:
        if self.http is None:
            raise RuntimeError("DeliveryWorker.start() first")
        started = time.monotonic()
        try:
            body = doc["payload"].encode()
            # The timestamp is wall time: receivers check it against their own clock, not our business clock.
            stamp = int(self.lease_clock.now().timestamp())
            headers = signing.headers(signing_secrets(endpoint, now), doc["event_id"], stamp, body)
            check_shape(endpoint["url"], allow_http=self.settings.webhooks_allow_http)  # the addresses: on connect
            # One budget for the whole attempt (httpx's timeout is per connect, read or write: a receiver
            # trickling its answer would hold the claim past its lease); the answer's body is not read.
            async with asyncio.timeout(self.settings.webhooks_timeout_s):
                async with self.http.stream("POST", endpoint["url"], content=body, headers=headers) as response:
                    status_code = response.status_code
        except BadUrl as exc:
            return None, f"URL refused: {exc}; no request sent"[:ERROR_LIMIT], 0
        except TimeoutError:
            reason = f"no answer within {self.settings.webhooks_timeout_s:g} s"
            return None, reason, int((time.monotonic() - started) * 1000)
        except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt, never a claim left to lapse
            if (refused := _refusal(exc)) is not None:  # the host resolves somewhere private now (wrapped or not)
                return None, str(refused)[:ERROR_LIMIT], 0
            # Anything but httpx's own transport errors (httpx.InvalidURL, a ValueError from a stored URL, a
            # secret that will not sign) is named by its type only: its text may quote the URL (credentials,
            # customer data in a query). Either way a failed attempt on the normal schedule.
            detail = exc if isinstance(exc, httpx.HTTPError) else "the attempt failed before a response"
            reason = f"{type(exc).__name__}: {detail}"
            return None, reason[:ERROR_LIMIT], int((time.monotonic() - started) * 1000)
        duration = int((time.monotonic() - started) * 1000)
        error = None if 200 <= status_code < 300 else f"HTTP {status_code}"
        return status_code, error, duration

    async def _account(self, endpoint: dict[str, Any], *, ok: bool, final: bool, now: datetime) -> None:
        """Keep the endpoint's failure record; disable it once it keeps failing."""
        if ok:
            if endpoint.get("failing_since") is not None or endpoint.get("consecutive_failures"):
                await self.store.update_endpoint(
                    endpoint["_id"], {"$set": {"consecutive_failures": 0}, "$unset": {"failing_since": ""}}
                )
            return
        update: dict[str, Any] = {"$min": {"failing_since": now}}
        if final:
            update["$inc"] = {"consecutive_failures": 1}
        after = await self.store.update_endpoint(endpoint["_id"], update)
        if after is None:
            return
        failing_for = now - after.get("failing_since", now)
        reason = None
        if after.get("consecutive_failures", 0) >= self.settings.webhooks_disable_after_failures:
            reason = f"{after['consecutive_failures']} deliveries in a row failed"
        elif failing_for >= timedelta(seconds=self.settings.webhooks_disable_after_s):
            reason = f"every attempt failed for {failing_for}"
        if reason and await self.store.disable(endpoint["_id"], now, reason):
            DELIVERIES.labels(outcome="disabled").inc()
            log.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint["_id"], "reason": reason})
