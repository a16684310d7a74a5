"""Chargeback use cases: ingest a Stripe dispute webhook, submit evidence (seller's or the platform's), close.

Exactly one event per change: each transition is one conditional write carrying its event
(shared.outbox). Evidence is submitted in three steps, each safe to repeat: record the submission
(its idempotency key) -> call the gateway -> write `under_review` with `chargeback.evidence_submitted`
and remove the submission. A crash after the first step leaves the submission for the retry job.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from services.disputes.chargebacks import domain
from services.disputes.chargebacks.domain import Dispute, IllegalTransition
from services.disputes.chargebacks.store import ChargebackStore, Submission, events_of
from services.disputes.chargebacks.stripe_disputes import Delivery, GatewayDeclined, GatewayUnavailable
from services.disputes.orders import OrderBook, OrderFacts
from shared.clock import Clock
from shared.dispute_models import Chargeback, Evidence
from shared.models import Actor
from shared.periodic import Periodic

log = logging.getLogger(__name__)

DISPUTE_EVENTS = frozenset({"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"})
# Time a submitter has to hear back from the gateway before the retry job takes the submission over.
SUBMISSION_LEASE = timedelta(seconds=60)
# Webhook deliveries are remembered this long: past Stripe's redelivery period (3 days), and a
# replay of one is refused for its age long before (STRIPE_WEBHOOK_TOLERANCE_S).
DELIVERY_MEMORY = timedelta(days=7)
_ATTEMPTS = 5  # optimistic retries of one transition against concurrent writers
Outcome = Literal["handled", "ignored", "duplicate"]


class Gateway(Protocol):
    async def submit(self, dispute_id: str, evidence: Evidence, *, key: str, chargeback_id: str) -> dict[str, Any]: ...


class ChargebackNotFound(LookupError):
    pass


class SubmissionInFlight(Exception):
    """Evidence for this chargeback is being submitted already."""


@dataclass
class ChargebackDesk:
    store: ChargebackStore
    orders: OrderBook
    gateway: Gateway
    clock: Clock
    evidence_days: Callable[[str | None], float]  # per marketplace (DisputeRules.evidence_days)
    on_commit: Callable[..., None]  # OutboxRelay.wake

    def now(self) -> datetime:
        return self.clock.now()

    # ---- the webhook --------------------------------------------------------------------------

    async def receive(self, delivery: Delivery) -> Outcome | None:
        """Handle a verified delivery: "handled", "ignored" (not a dispute event), "duplicate"
        (handled before); None for an exact replay (refused)."""
        # Read before anything is written: an unreadable dispute (UnreadableDispute) changes nothing.
        dispute = Dispute.from_stripe(delivery.object) if delivery.event_type in DISPUTE_EVENTS else None
        seen = await self.store.note_delivery(delivery.event_id, delivery.signed_at, self.now())
        if seen is None:
            return None
        if seen:
            return "duplicate"
        outcome: Outcome = "ignored"
        if dispute is not None:
            await self.on_dispute(delivery.event_type, dispute)
            outcome = "handled"
        await self.store.delivery_handled(delivery.event_id, self.now())
        return outcome

    async def on_dispute(self, event_type: str, dispute: Dispute) -> None:
        # Deliveries may come in any order: whichever event names a dispute first opens its chargeback.
        chargeback_id = (await self.open(dispute)).chargeback_id
        now = self.now()
        if event_type == "charge.dispute.closed":
            # A pending submission is moot once the dispute is closed: it goes with the close.
            close = lambda cb: domain.close(cb, dispute, now)  # noqa: E731
            await self._transition(chargeback_id, f"chargeback.{dispute.outcome.value}", close, drop_submission=True)
        elif event_type == "charge.dispute.updated":
            await self._transition(chargeback_id, None, lambda cb: domain.gateway_update(cb, dispute, now))

    async def open(self, dispute: Dispute) -> Chargeback:
        """The dispute's chargeback, opened now (`chargeback.opened`) unless it exists; on an order
        refunded in full, the platform's evidence is recorded with it and submitted at once."""
        stored = await self.store.get(domain.chargeback_id(dispute.id))
        if stored is not None:
            return stored[0]  # a pending submission of it is its submitter's, or the retry job's
        now = self.now()
        facts, reference = await self._order_of(dispute)
        # The evidence days of the order's marketplace; no known order: the deployment's default one.
        evidence_days = self.evidence_days(facts.order.marketplace if facts else None)
        chargeback = domain.open_chargeback(dispute, facts, reference, now, evidence_days)
        submission = None
        if facts is not None and domain.refunded_in_full(facts):
            evidence = domain.refund_evidence(facts)
            submission = self._submission(chargeback, evidence, domain.PLATFORM, automatic=True)
        entries = await self.store.insert(chargeback, events_of([("chargeback.opened", chargeback)], now), submission)
        if entries is None:  # another delivery of the same dispute opened it meanwhile
            stored = await self.store.get(chargeback.chargeback_id)
            if stored is None:
                raise ChargebackNotFound(chargeback.chargeback_id)
            return stored[0]
        self.on_commit(chargeback.chargeback_id, collection=self.store.chargebacks, entries=entries)
        log.info("chargeback opened", extra={"chargeback_id": chargeback.chargeback_id, "automatic": bool(submission)})
        if submission is not None:
            await self._submit(chargeback.chargeback_id, submission)
        return chargeback

    async def _order_of(self, dispute: Dispute) -> tuple[OrderFacts | None, str]:
        for reference in dispute.references:
            facts = await self.orders.by_payment(reference)
            if facts is not None:
                return facts, reference
        return None, dispute.references[0]

    # ---- evidence -----------------------------------------------------------------------------

    def _submission(self, chargeback: Chargeback, evidence: Evidence, actor: Actor, *, automatic: bool) -> Submission:
        # A new key per submission (a retry reuses the recorded one): the gateway remembers a key's
        # answer, a refusal included, so evidence sent again after a refusal needs a key of its own.
        key = f"{chargeback.chargeback_id}:evidence:{uuid.uuid4().hex}"
        return Submission(evidence, actor, automatic, key, self.now() + SUBMISSION_LEASE)

    async def submit_evidence(
        self, chargeback: Chargeback, evidence: Evidence, actor: Actor
    ) -> tuple[Chargeback, bool]:
        """The seller's (or an agent's) evidence, submitted to the gateway: the chargeback after it,
        and whether the gateway took it (False: it was away, the retry job submits the evidence).
        IllegalTransition unless it needs a response; SubmissionInFlight while one is being sent;
        GatewayDeclined when the gateway refused it (nothing kept)."""
        for _ in range(_ATTEMPTS):
            domain.check_submittable(chargeback, now=self.now(), by_seller=actor.role == "seller")
            submission = self._submission(chargeback, evidence, actor, automatic=False)
            if await self.store.record_submission(chargeback, submission):
                submitted = await self._submit(chargeback.chargeback_id, submission, raise_declined=True)
                return await self.get(chargeback.chargeback_id), submitted
            stored = await self.store.get(chargeback.chargeback_id)  # it changed since it was read
            if stored is None:
                raise ChargebackNotFound(chargeback.chargeback_id)
            if stored[1] is not None:
                raise SubmissionInFlight(chargeback.chargeback_id)
            chargeback = stored[0]
        raise SubmissionInFlight(chargeback.chargeback_id)

    async def get(self, chargeback_id: str) -> Chargeback:
        stored = await self.store.get(chargeback_id)
        if stored is None:
            raise ChargebackNotFound(chargeback_id)
        return stored[0]

    async def _submit(self, chargeback_id: str, submission: Submission, *, raise_declined: bool = False) -> bool:
        """Call the gateway for a recorded submission and record its answer. True once submitted."""
        stored = await self.store.get(chargeback_id)
        if stored is None:
            return False
        chargeback = stored[0]
        try:
            answer = await self.gateway.submit(
                chargeback.gateway_dispute_id, submission.evidence, key=submission.key, chargeback_id=chargeback_id
            )
        except GatewayDeclined as exc:
            log.warning("evidence refused by the gateway", extra={"chargeback_id": chargeback_id, "error": str(exc)})
            await self.store.drop_submission(chargeback_id, submission.key, str(exc))
            if raise_declined:
                raise
            return False
        except GatewayUnavailable:
            log.warning("gateway unavailable, evidence kept for a retry", extra={"chargeback_id": chargeback_id})
            return False
        log.info("evidence submitted", extra={"chargeback_id": chargeback_id, "gateway_status": answer.get("status")})
        return await self._transition(
            chargeback_id,
            "chargeback.evidence_submitted",
            lambda cb: domain.evidence_submitted(
                cb, submission.evidence, submission.actor, submission.automatic, self.now()
            ),
            submission_key=submission.key,
            extra={"gateway_answer": answer},
        )

    async def retry_stalled(self, limit: int) -> int:
        """Submit again what was recorded but not known to be submitted (the retry job)."""
        now, done = self.now(), 0
        for chargeback_id in await self.store.stalled_submissions(now, limit):
            stored = await self.store.get(chargeback_id)
            if stored is None or stored[1] is None:
                continue
            submission = stored[1]
            if await self.store.lease_submission(chargeback_id, submission.key, now, now + SUBMISSION_LEASE):
                done += await self._submit(chargeback_id, submission)
        return done

    # ---- one transition -----------------------------------------------------------------------

    async def _transition(
        self,
        chargeback_id: str,
        event_type: str | None,
        step: Callable[[Chargeback], Chargeback | None],
        *,
        submission_key: str | None = None,
        drop_submission: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        """Apply `step` to the stored chargeback and write it with its event (if any); read again when
        a concurrent write moved the version. With `submission_key`, only while that submission is
        recorded (it is removed in the same write). False when there is nothing to do: illegal now,
        no change, or the submission's answer was recorded by someone else."""
        for _ in range(_ATTEMPTS):
            stored = await self.store.get(chargeback_id)
            if stored is None:
                return False
            before, pending = stored
            if submission_key is not None and (pending is None or pending.key != submission_key):
                return False
            try:
                after = step(before)
            except IllegalTransition:
                return False
            if after is None:
                return False
            events = events_of([(event_type, after)], self.now()) if event_type else []
            unset = submission_key is not None or (drop_submission and pending is not None)
            handover = await self.store.commit(
                before, after, events, submission_key=submission_key, unset_submission=unset, extra=extra
            )
            if handover is not None:
                self.on_commit(chargeback_id, collection=self.store.chargebacks, **handover)
                return True
        raise RuntimeError(f"chargeback {chargeback_id} kept changing under {event_type}")


class EvidenceRetryJob:
    """Submits evidence whose submitter crashed or found the gateway away, every `interval_s`; and
    forgets old webhook deliveries (no TTL indexes: expired by a job)."""

    def __init__(self, desk: ChargebackDesk, *, interval_s: float, batch_size: int) -> None:
        self.desk, self.batch_size = desk, batch_size
        self._loop = Periodic("chargeback-evidence", self.run_once, interval_s)

    async def run_once(self) -> int:
        await self.desk.store.forget_deliveries(self.desk.now() - DELIVERY_MEMORY)
        return await self.desk.retry_stalled(self.batch_size)

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
