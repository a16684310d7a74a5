"""The dispatcher: sends due emails in the background, so consumers only record what is owed.

Consumers hand it an event's new emails (`record`: inserted claimed, sent at once); retries it
scheduled and resends `wake()` it with their ids; it also polls for due emails no one holds.

Crash safety (SMTP cannot be exactly once; this keeps duplicates rare, identical and bounded):
- Each email is claimed for a short lease (DISPATCH_LEASE_S) before sending (a new one is inserted
  claimed), and the claim records that an attempt starts (`domain.claim_update`): the record exists
  before the server sees a byte.
- While the process lives, a heartbeat renews each claim in flight once it is a third of the lease
  old (checked every sixth), however slow the server, so no other replica takes them over; a dead
  process's claims lapse within one lease and another sender (or the restarted one) picks them up.
- The outcome is recorded the moment the server answers the data (no QUIT on the way): the window
  in which a crash leaves an accepted email unrecorded is one store write long.
- A claim that finds an earlier, unsettled attempt sends the email again with the same Message-ID
  (and bytes), at most once; after a second interruption it settles `failed` without sending.
- A sender whose claim was taken over (the heartbeat says so) stops its send if the server has not
  answered yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from opentelemetry.trace import SpanKind

from services.notifications.claiming import RetryTimers, claim_on_slot
from services.notifications.domain import (
    NotificationStatus,
    Step,
    after_attempt,
    applied,
    claimed,
    given_up,
    interrupted_marks,
    message_id,
    next_step,
    notification_event,
)
from services.notifications.mail import Mailer
from services.notifications.settings import Settings
from services.notifications.store import NotificationStore
from shared import ops_metrics, tracing
from shared.clock import Clock, SystemClock
from shared.periodic import Periodic

log = logging.getLogger(__name__)


@dataclass(eq=False)
class InFlight:
    """A claim this process holds: renewed by the heartbeat until its outcome is recorded."""

    notification_id: str
    claim: str
    task: asyncio.Task[None] | None = None
    answered: bool = False  # the server answered (or there is nothing to send): never stop it now
    leased_at: float = field(default_factory=time.monotonic)  # when its lease was last set (monotonic)


class Dispatcher:
    def __init__(
        self, store: NotificationStore, mailer: Mailer, settings: Settings, clock: Clock, relay: Any = None
    ) -> None:
        self.store, self.mailer, self.settings, self.clock, self.relay = store, mailer, settings, clock, relay
        self.lease_clock = SystemClock()  # claims are operational time, never the movable business clock
        self.lease = timedelta(seconds=settings.dispatch_lease_s)
        self.heartbeat_s = settings.dispatch_lease_s / 3  # two renewals may fail before a claim lapses
        self._slots = asyncio.Semaphore(settings.dispatch_workers)
        # Taking several slots at once, one taker at a time: two takers each holding part of what
        # they need could otherwise wait for each other forever.
        self._taking = asyncio.Lock()
        # Emails just recorded are inserted already claimed and sent at once; retries this process
        # scheduled and resends are claimed by _id. The query for any due email (a crashed sender's
        # leftovers, another replica's retries) runs at most once per poll interval.
        self._fresh: deque[str] = deque()
        self._next_scan = 0.0
        self._retries = RetryTimers(clock, self.wake)
        self._stopping = False
        self._loop = Periodic("notifications-dispatcher", self._dispatch_due, settings.dispatch_poll_ms / 1000)
        self._heartbeat: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self.in_flight: dict[str, InFlight] = {}

    def wake(self, fresh: Iterable[str] = ()) -> None:
        """Look for work now; `fresh`: emails known to be due (claimed by `_id`, no query)."""
        self._fresh.extend(fresh)
        self._loop.wake()

    async def record(self, docs: list[dict[str, Any]]) -> int:
        """Insert an event's new emails already claimed by this process, their attempts recorded
        (`domain.claimed`), in one command, and start sending them; returns how many were new.

        Waits for a free sender per email first, so a claim never waits in memory for a sender
        (the consumer slows down instead: the backlog stays on the broker).
        """
        if not docs:
            return 0
        if self._stopping or len(docs) > self.settings.dispatch_workers:
            # No sender will take them now, or never all at once: recorded unclaimed, then claimed
            # one by one by _id (or by the next poll, once stopped).
            recorded = await self.store.record(docs)
            if not self._stopping:
                self.wake(doc["_id"] for doc in recorded)
            return len(recorded)
        taken = started = 0
        try:
            async with self._taking:
                for _ in docs:
                    await self._slots.acquire()
                    taken += 1
            now, lease_now = self.clock.now(), self.lease_clock.now()
            claimed_docs = [claimed(doc, uuid.uuid4().hex, now, lease_now, self.lease) for doc in docs]
            leased_at = time.monotonic()
            for doc in await self.store.record(claimed_docs):
                self._start(doc, leased_at)
                started += 1
        finally:  # the slots of emails not sending (already recorded, a failed insert, cancelled)
            for _ in range(taken - started):
                self._slots.release()
        return started

    async def start(self) -> None:
        self._loop.start()
        self._heartbeat = asyncio.create_task(self._heartbeats(), name="notifications-heartbeat")

    async def stop(self) -> None:
        self._stopping = True
        await self._loop.stop()
        self._retries.cancel_all()  # the poll of whichever process runs next finds them
        if self._sending:  # let sends in flight record their outcome (their claims still renewed)
            await asyncio.wait(self._sending, timeout=self.settings.smtp_timeout_s)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with suppress(asyncio.CancelledError):
                await self._heartbeat
        await self.mailer.close()

    async def _heartbeats(self) -> None:
        while True:
            # Every half beat, so a claim is renewed between one and one and a half beats after its
            # lease was set, and a failed renewal is tried again half a beat later.
            await asyncio.sleep(self.heartbeat_s / 2)
            try:
                await self.renew_claims()
            except Exception:  # the next beat tries again; the lease allows two misses
                log.exception("claim renewal failed")

    async def renew_claims(self) -> int:
        """Extend the lease of every claim in flight set a beat ago or more; stop the sends whose
        claim was taken over.

        One single-document write by _id per such email (at most DISPATCH_WORKERS). Returns how
        many claims were renewed.
        """
        started = time.monotonic()
        # Only claims whose lease was set a beat ago or more: most sends finish well within one, and
        # then cost no renewal at all.
        current = [f for f in self.in_flight.values() if started - f.leased_at >= self.heartbeat_s]
        if not current:
            return 0
        until = self.lease_clock.now() + self.lease
        renewals = (self.store.renew(f.notification_id, f.claim, until) for f in current)
        results = await asyncio.gather(*renewals, return_exceptions=True)
        renewed = 0
        for flight, kept in zip(current, results, strict=True):
            if isinstance(kept, BaseException):
                log.warning(
                    "could not renew a claim",
                    extra={"notification_id": flight.notification_id, "error": f"{type(kept).__name__}: {kept}"},
                )
            elif kept:
                flight.leased_at = started
                renewed += 1
            elif (
                not flight.answered and flight.task is not None and self.in_flight.get(flight.notification_id) is flight
            ):
                # Another sender has it (we were frozen or cut off for a whole lease): if the server
                # has not answered yet, dropping the connection now may still avoid a second copy.
                log.warning(
                    "claim taken over mid-send; stopping this send", extra={"notification_id": flight.notification_id}
                )
                flight.task.cancel()
        return renewed

    async def _dispatch_due(self) -> None:
        while (doc := await claim_on_slot(self._slots, self._claim_next)) is not None:
            self._start(doc)

    def _start(self, doc: dict[str, Any], leased_at: float | None = None) -> None:
        """Send a claimed email in the background, on a slot already taken for it."""
        flight = InFlight(doc["_id"], doc["claim"], leased_at=time.monotonic() if leased_at is None else leased_at)
        self.in_flight[doc["_id"]] = flight
        flight.task = asyncio.create_task(self._send(doc, flight))
        self._sending.add(flight.task)
        flight.task.add_done_callback(self._sending.discard)

    async def _claim_next(self) -> dict[str, Any] | None:
        while self._fresh:
            notification_id = self._fresh.popleft()
            doc = await self.store.claim(self.clock.now(), self.lease_clock.now(), self.lease, notification_id)
            if doc is not None:
                return doc
        if time.monotonic() < self._next_scan:
            return None
        doc = await self.store.claim(self.clock.now(), self.lease_clock.now(), self.lease)
        if doc is None:  # nothing else is due: look again at the next poll
            self._next_scan = time.monotonic() + self.settings.dispatch_poll_ms / 1000
        return doc

    async def _send(self, doc: dict[str, Any], flight: InFlight) -> None:
        try:
            # In the trace of the event that caused the email: `notification.sent` continues it.
            with tracing.continued(doc, "email send", SpanKind.CLIENT, notification_id=doc["_id"]):
                await self.send_one(doc, flight)
        except asyncio.CancelledError:
            log.warning("send stopped: the claim was taken over", extra={"notification_id": doc["_id"]})
            raise
        except Exception:  # the claim lapses and the email is tried again
            log.exception("could not record a send attempt", extra={"notification_id": doc["_id"]})
        finally:
            if self.in_flight.get(doc["_id"]) is flight:
                del self.in_flight[doc["_id"]]
            self._slots.release()
            self.wake()  # a slot is free: look for more

    async def send_one(self, doc: dict[str, Any], flight: InFlight | None = None) -> str:
        """One attempt for a claimed notification; returns the status it ends in."""
        flight = flight or InFlight(doc["_id"], doc["claim"])
        smtp_id = message_id(doc["_id"], doc["generation"], self.settings.message_id_domain)
        step = next_step(doc)
        if interrupted_marks(doc):
            log.warning(
                "an earlier attempt was interrupted before its outcome was recorded",
                extra={
                    "notification_id": doc["_id"],
                    "smtp_message_id": smtp_id,
                    "step": str(step),
                    "interrupted": len(interrupted_marks(doc)) + doc.get("interrupted", 0),
                },
            )
        outcome = None
        event_type: str | None
        if step is Step.GIVE_UP:
            flight.answered = True
            update, event_type = given_up(doc, self.clock.now())
        else:
            outcome = await self.mailer.send(doc, doc["recipient_email"])
            flight.answered = True  # from here on, only recording: nothing may stop it
            update, event_type = after_attempt(
                doc, outcome, smtp_id, self.clock.now(), self.settings.send_retry_delays_ms
            )
        now = update["$set"]["updated_at"]
        after = applied(doc, update)
        events = [notification_event(event_type, after, now)] if event_type else []
        handover = await self._settle(doc, update, events)
        if handover is None:
            log.warning("claim lost before the outcome was recorded", extra={"notification_id": doc["_id"]})
            return doc["status"]
        if events and self.relay is not None:
            self.relay.wake(doc["_id"], collection=self.store.collection, **handover)
        outcome_label = {"sent": "sent", "failed": "failed"}.get(after["status"], "deferred")  # pending: retried
        ops_metrics.email(doc["template"], outcome_label, doc.get("event_time") or doc.get("created_at"), now)
        if after["status"] == NotificationStatus.PENDING:
            self._retries.at(doc["_id"], after["next_attempt_at"])
        log.info(
            "email attempt",
            extra={
                "notification_id": doc["_id"],
                "event_id": doc["event_id"],
                "template": doc["template"],
                "recipient_role": doc["recipient_role"],
                "recipient_id": doc["recipient_id"],
                "step": str(step),
                "outcome": outcome.kind if outcome else "not sent",
                "smtp_code": outcome.code if outcome else None,
                "attempts": after["attempts"],
                "status": after["status"],
                "error": None if outcome and outcome.kind == "sent" else after.get("error"),
            },
        )
        return after["status"]

    async def _settle(self, doc: dict[str, Any], update: dict[str, Any], events: list[Any]) -> dict[str, Any] | None:
        """Record the outcome now; if the store hiccups, keep trying while the claim can still be
        ours (the heartbeat keeps renewing it), rather than let it lapse into a resend."""
        deadline = time.monotonic() + self.lease.total_seconds()
        delay = 0.05
        while True:
            try:
                return await self.store.settle(doc, update, events)
            except Exception:  # the store hiccups: try again while the claim can still be ours
                if time.monotonic() + delay > deadline:
                    raise
                log.warning(
                    "could not record an attempt yet; retrying", extra={"notification_id": doc["_id"]}, exc_info=True
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
