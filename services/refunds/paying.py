"""Paying a refund exactly once: claim, reserve, call the gateway under a stored key, settle or release.

The refund document, with its gateway idempotency key, exists before any gateway call. A payer
that dies anywhere leaves the refund `pending`; once its lease runs out, anyone may resume it, and
the gateway sees the same key again, so the buyer is paid once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from prometheus_client import Counter

from services.refunds import destination, domain
from services.refunds.gateways import GatewayDeclined, GatewayRefund, GatewayUnavailable, PaymentGateway
from services.refunds.order_ledger import CapExceeded
from services.refunds.store import LEASE, UNLEASED, RefundRecord, RefundStore
from shared import ops_metrics
from shared.clock import Clock, SystemClock
from shared.marketplaces import Marketplaces
from shared.models import ALREADY_REFUNDED, Refund, RefundDestination, RefundKind, RefundStatus
from shared.mongo import as_stored

log = logging.getLogger(__name__)
GATEWAY_CALLS = Counter("refund_gateway_calls_total", "Payment gateway calls.", ["gateway", "outcome"])
REFUNDS_DONE = Counter("refunds_completed_total", "Refunds issued or failed.", ["status", "automatic"])
EXCEEDS_PAID = "the refund exceeds what is left of what the buyer paid"
_FIT_ATTEMPTS = 5  # a claim's or offer's refund shrinks to what is left; concurrent refunds may take more each time


@dataclass(frozen=True)
class _Outcome:
    refund: Refund  # with the attempts counted
    reference: str | None = None
    failure: str | None = None
    lost: bool = False  # someone else changed the refund meanwhile, or took its lease
    lease: datetime | None = None  # the lease held after the call (renewed before each later attempt)
    # The gateway never answered (timeouts, 5xx): it may have paid. The refund fails but keeps its
    # amount held in the order's cap, so nothing else can be paid in its place; an agent's retry
    # first asks the gateway whether an earlier round paid.
    unknown: bool = False


class Payer:
    def __init__(
        self,
        store: RefundStore,
        gateways: Mapping[str, PaymentGateway],
        clock: Clock,
        *,
        lease: timedelta,
        retry_delays_ms: list[int],
        timeout_s: float,
        marketplaces: Marketplaces,
        committed: Callable[..., None] = lambda *_, **__: None,
    ) -> None:
        self.store, self.gateways, self.clock = store, gateways, clock
        self.lease, self.retry_delays_ms, self.timeout_s = lease, retry_delays_ms, timeout_s
        # The rules of each marketplace (Settings.served_marketplaces(): overrides applied), for the bonus on
        # store credit, worked out again when a refund's amount changes (capped here, replaced in `Refunds`).
        self.marketplaces = marketplaces
        self.committed = committed  # OutboxRelay.wake(refund_id, **how): the refund's events are committed
        self.lease_clock = SystemClock()  # leases are operational time, never the movable business clock
        # Refund id -> end of its lease, for payments of this process an error interrupted (`watched`).
        self.interrupted: dict[str, datetime] = {}

    def bonus_percent(self, marketplace: str) -> Decimal:
        """The marketplace's bonus on a refund taken as store credit (`resolutions.store_credit_bonus_percent`)."""
        return self.marketplaces.require(marketplace).resolutions.store_credit_bonus_percent

    async def pay(self, refund_id: str, *, refuse_over_cap: bool = False) -> Refund | None:
        """Pay a pending refund if nobody else is; returns its state afterwards.

        With `refuse_over_cap` (a request being answered) a refund beyond what the buyer paid is
        undone and CapExceeded raised; otherwise it ends `failed`.
        """
        lease_now = self.lease_clock.now()
        until = as_stored(lease_now + self.lease)
        with self.watched(refund_id, until):
            record = await self.store.claim(refund_id, lease_now, until)
            if record is None:
                current = await self.store.get(refund_id)
                return None if current is None else current.refund
            return await self._pay(record, refuse_over_cap)

    def lease_end(self) -> datetime:
        """The end of a lease taken now: for a refund inserted claimed (`RefundStore.insert`)."""
        return as_stored(self.lease_clock.now() + self.lease)

    async def pay_created(self, record: RefundRecord, until: datetime) -> Refund | None:
        """Pay a pending refund this process has just inserted with its lease (until `until`)."""
        with self.watched(record.refund.refund_id, until):
            return await self._pay(replace(record, lease_until=until), refuse_over_cap=False)

    @contextmanager
    def watched(self, refund_id: str, until: datetime) -> Iterator[None]:
        """Note a payment an error interrupted (the store or broker away): the refund stays pending
        under a lease nobody holds any more, and the deadline job resumes it when the lease ends
        (`interrupted`), without waiting for a sweep of the whole collection."""
        try:
            yield
        except CapExceeded:
            raise  # a refused request: its refund was undone, nothing to resume
        except Exception:
            self.interrupted[refund_id] = until
            raise

    async def _pay(self, record: RefundRecord, refuse_over_cap: bool) -> Refund | None:
        """Pay a refund whose lease this payer holds since a moment ago (claimed or inserted claimed)."""
        refund = record.refund
        unpayable = domain.unpayable(refund)  # nothing refundable came back, or its prices were wrong
        if unpayable is not None:
            return await self._fail(refund, None, unpayable, release=False, lease=record.lease_until)
        # Chosen by where the refund goes before what paid the order: store credit is the ledger's.
        name = destination.gateway_name(refund, record.payment.provider)
        gateway = self.gateways.get(name)
        if gateway is None:
            why = "provider" if refund.destination == RefundDestination.ORIGINAL_PAYMENT else "destination"
            return await self._fail(
                refund, None, f"no payment gateway for {why} {name!r}", release=False, lease=record.lease_until
            )
        if refund.kind in domain.CAPPED_KINDS:
            fitted = await self._reserve_capped(record)
            if not isinstance(fitted, RefundRecord):
                return fitted
            record, refund = fitted, fitted.refund
        else:
            try:
                await self.store.ledgers.reserve(refund.order_id, refund.refund_id, refund.amount.amount)
            except CapExceeded:
                if refuse_over_cap and await self._undo(record):
                    raise
                return await self._fail(refund, gateway.name, EXCEEDS_PAID, release=False, lease=record.lease_until)
        outcome = await self._call(record, gateway)
        if outcome.lost:
            current = await self.store.get(refund.refund_id)
            return None if current is None else current.refund
        if outcome.failure is not None:
            release = not outcome.unknown
            return await self._fail(outcome.refund, gateway.name, outcome.failure, release=release, lease=outcome.lease)
        return await self._issue(outcome.refund, gateway.name, outcome.reference, outcome.lease)

    async def _reserve_capped(self, record: RefundRecord) -> RefundRecord | Refund | None:
        """Reserve a claim's or an offer's refund on its order's ledger, shrunk to what is left of the order when
        another refund took part of it since the refund opened (a new version, written under the
        lease this payer holds, before anything is reserved or paid). Answers the record to pay,
        or the refund as it ends without a payment: failed `already_refunded` when nothing is left
        (no gateway call), or as someone else changed it."""
        refund = record.refund
        for _ in range(_FIT_ATTEMPTS):
            try:
                await self.store.ledgers.reserve(refund.order_id, refund.refund_id, refund.amount.amount)
                return replace(record, refund=refund)
            except CapExceeded as exc:
                available = exc.available
            if available <= 0:
                return await self._fail(refund, None, ALREADY_REFUNDED, release=False, lease=record.lease_until)
            capped = domain.cap(
                refund, available, self.clock.now(), bonus_percent=self.bonus_percent(refund.marketplace)
            )
            if not await self.store.save(refund.version, capped):
                current = await self.store.get(refund.refund_id)
                return None if current is None else current.refund
            log.info(
                f"{refund.kind.value} refund capped to what is left of the order",
                extra={"refund_id": refund.refund_id, "kind": refund.kind.value, "amount": available},
            )
            refund = capped
        return await self._fail(refund, None, EXCEEDS_PAID, release=False, lease=record.lease_until)

    async def _call(self, record: RefundRecord, gateway: PaymentGateway) -> _Outcome:
        refund = record.refund
        request = GatewayRefund(
            refund_id=refund.refund_id,
            idempotency_key=record.idempotency_key,
            payment_reference=record.payment.reference,
            amount=refund.amount,
            order_id=refund.order_id,
            return_id=refund.return_id,
            claim_id=refund.claim_id,
            key_round=record.key_round,
            # Store credit: whose balance, the seller it is on behalf of, and the marketplace's bonus.
            buyer=refund.buyer,
            seller_id=refund.seller.id,
            bonus=refund.store_credit_bonus,
        )
        # A new round of keys (an agent's retry) must first make sure no earlier round paid.
        checked = record.key_round == 0
        error = "no attempt made"
        lease = record.lease_until
        for attempt, delay_ms in enumerate([0, *self.retry_delays_ms]):
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            refund = refund.model_copy(update={"attempts": refund.attempts + 1})
            # The first attempt follows the claim at once: the lease is fresh and the record current,
            # so only a later attempt records itself and renews the lease first. (A crash before the
            # outcome is recorded leaves that first attempt uncounted; the payment key is unchanged.)
            if attempt:
                renewed = as_stored(self.lease_clock.now() + self.lease)
                if not await self.store.extend_lease(refund, lease, renewed):
                    return _Outcome(refund, lost=True)
                lease = renewed
            fields = {"refund_id": refund.refund_id, "gateway": gateway.name, "attempt": attempt + 1}
            try:
                if not checked:
                    found = await asyncio.wait_for(gateway.find(request), self.timeout_s)
                    checked = True
                    if found is not None:
                        log.info("refund found already paid at the gateway", extra=fields)
                        return _Outcome(refund, reference=found, lease=lease)
                reference = await asyncio.wait_for(gateway.refund(request), self.timeout_s)
                GATEWAY_CALLS.labels(gateway.name, "paid").inc()
                return _Outcome(refund, reference=reference, lease=lease)
            except (GatewayUnavailable, TimeoutError) as exc:
                error = str(exc) or "timeout"
                GATEWAY_CALLS.labels(gateway.name, "unavailable").inc()
                log.warning("gateway unavailable", extra=fields | {"error": error})
            except GatewayDeclined as exc:
                GATEWAY_CALLS.labels(gateway.name, "declined").inc()
                return _Outcome(refund, failure=f"declined: {exc}", lease=lease)
        failure = f"gateway unavailable after {refund.attempts} attempts: {error}"
        return _Outcome(refund, failure=failure, unknown=True, lease=lease)

    async def _issue(
        self, refund: Refund, gateway: str | None, reference: str | None, lease: datetime | None
    ) -> Refund:
        # Counted even by a payer that lost its lease meanwhile: the money was paid (settle is keyed).
        if refund.amount.amount > 0:
            await self.store.ledgers.settle(refund.order_id, refund.refund_id, refund.amount.amount)
        issued = domain.issue(refund, self.clock.now(), gateway=gateway, reference=reference)
        return await self._record(refund, issued, lease)

    async def _fail(
        self, refund: Refund, gateway: str | None, reason: str, *, release: bool, lease: datetime | None
    ) -> Refund:
        failed = domain.fail(refund, self.clock.now(), gateway=gateway, reason=reason)
        recorded = await self._record(refund, failed, lease)
        # Released only once the failure is recorded under this payer's lease: a payer that lost it
        # must not give back room another payer of the same refund is still using.
        if release and recorded is failed:
            await self.store.ledgers.release(refund.order_id, refund.refund_id)
        return recorded

    async def _record(self, before: Refund, after: Refund, lease: datetime | None) -> Refund:
        handover = await self.store.commit(
            before.version,
            after,
            events=domain.events(after),
            extra={LEASE: UNLEASED, "previous": None},
            lease=lease,
        )
        if handover is None:
            current = await self.store.get(before.refund_id)  # another payer recorded it first
            return after if current is None else current.refund
        self.committed(after.refund_id, **handover)
        REFUNDS_DONE.labels(after.status.value, str(after.automatic).lower()).inc()
        if after.status == RefundStatus.ISSUED:
            ops_metrics.refund_paid(after.amount.currency, after.amount.amount)
        log.info(
            f"refund {after.status.value}",
            extra={
                "refund_id": after.refund_id,
                "return_id": after.return_id,
                "order_id": after.order_id,
                "amount": after.amount.amount,
                "currency": after.currency,
                "gateway": after.gateway,
                "attempts": after.attempts,
                "failure": after.failure_reason,
            },
        )
        return after

    async def _undo(self, record: RefundRecord) -> bool:
        """Put back what the refused request changed: its new direct refund, or the refund it replaced."""
        refund = record.refund
        if refund.kind == RefundKind.DIRECT and refund.version == 1:
            return await self.store.delete_unpaid(refund)
        if record.previous is None:
            return False
        restored = Refund.model_validate(
            {
                **refund.model_dump(mode="json"),
                **record.previous,
                "version": refund.version + 1,
                "updated_at": self.clock.now().isoformat(),
            }
        )
        return await self.store.save(refund.version, restored, extra={"previous": None})
