"""The dispatcher: sends due emails in the background, so consumers only record what is owed.

Consumers and resends `wake()` it; it also polls, which is how delayed retries come due. Each email
is claimed for a lease before sending; if the process dies mid-send the lease runs out and the
email goes again with the same Message-ID.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable
from contextlib import suppress
from datetime import timedelta
from typing import Any

from services.notifications.domain import after_attempt, applied, message_id, notification_event
from services.notifications.mail import Mailer, build_message
from services.notifications.settings import Settings
from services.notifications.store import NotificationStore
from shared.clock import Clock, SystemClock

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, store: NotificationStore, mailer: Mailer, settings: Settings, clock: Clock,
                 relay: Any = None) -> None:
        self.store, self.mailer, self.settings, self.clock, self.relay = store, mailer, settings, clock, relay
        self.lease_clock = SystemClock()  # claims are operational time, never the movable business clock
        # Long enough to outlive a slow SMTP dialogue, so two workers never send one email at once.
        self.lease = timedelta(seconds=max(60.0, 3 * settings.smtp_timeout_s))
        self._slots = asyncio.Semaphore(settings.dispatch_workers)
        self._wakeup = asyncio.Event()
        # Emails just recorded are claimed by _id; the query for any due email (retries, a crashed
        # sender's leftovers, resends) runs at most once per poll interval, not once per email.
        self._fresh: deque[str] = deque()
        self._next_scan = 0.0
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def wake(self, fresh: Iterable[str] = ()) -> None:
        self._fresh.extend(fresh)
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="notifications-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        if self._sending:  # let sends in flight record their outcome
            await asyncio.wait(self._sending, timeout=self.settings.smtp_timeout_s)

    async def _loop(self) -> None:
        while True:
            self._wakeup.clear()  # before looking, so a wake() meanwhile triggers another look
            try:
                await self._dispatch_due()
            except Exception:  # noqa: BLE001 - the store is unreachable: try again at the next poll
                log.exception("dispatch run failed")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.settings.dispatch_poll_ms / 1000)

    async def _dispatch_due(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                doc = await self._claim_next()
            except BaseException:
                self._slots.release()
                raise
            if doc is None:
                self._slots.release()
                return
            task = asyncio.create_task(self._send(doc))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _claim_next(self) -> dict[str, Any] | None:
        while self._fresh:
            doc = await self.store.claim(self._fresh.popleft(), self.clock.now(), self.lease_clock.now(), self.lease)
            if doc is not None:
                return doc
        if time.monotonic() < self._next_scan:
            return None
        doc = await self.store.claim_due(self.clock.now(), self.lease_clock.now(), self.lease)
        if doc is None:  # nothing else is due: look again at the next poll
            self._next_scan = time.monotonic() + self.settings.dispatch_poll_ms / 1000
        return doc

    async def _send(self, doc: dict[str, Any]) -> None:
        try:
            await self.send_one(doc)
        except Exception:  # noqa: BLE001 - the claim lapses and the email is tried again
            log.exception("could not record a send attempt", extra={"notification_id": doc["_id"]})
        finally:
            self._slots.release()
            self.wake()  # a slot is free: look for more

    async def send_one(self, doc: dict[str, Any]) -> str:
        """One attempt for a claimed notification; returns the status it ends in."""
        smtp_id = message_id(doc["_id"], doc["generation"], self.settings.message_id_domain)
        outcome = await self.mailer.send(build_message(doc, self.settings), doc["recipient_email"])
        now = self.clock.now()
        update, event_type = after_attempt(doc, outcome, smtp_id, now, self.settings.send_retry_delays_ms)
        after = applied(doc, update)
        events = [notification_event(event_type, after, now)] if event_type else []
        if not await self.store.settle(doc, update, events):
            log.warning("claim lost before the outcome was recorded", extra={"notification_id": doc["_id"]})
            return doc["status"]
        if events and self.relay is not None:
            self.relay.wake()
        log.info("email attempt", extra={
            "notification_id": doc["_id"], "event_id": doc["event_id"], "template": doc["template"],
            "recipient_role": doc["recipient_role"], "recipient_id": doc["recipient_id"],
            "outcome": outcome.kind, "smtp_code": outcome.code, "attempts": after["attempts"],
            "status": after["status"], "error": None if outcome.kind == "sent" else outcome.detail})
        return after["status"]
