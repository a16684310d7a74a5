"""Use cases: open a return's refund on receipt, sellers' and agents' refunds, retries, the deadline."""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from services.refunds import domain
from services.refunds.errors import (
    InvalidRefund,
    OrderNotFound,
    RefundExceedsPaid,
    RefundNotAllowed,
    RefundNotFound,
    ReturnNotRefundable,
)
from services.refunds.order_ledger import CapExceeded, NoLedger, came_back_so_far
from services.refunds.paying import Payer
from services.refunds.policy import (
    CameBack,
    LineChoice,
    RefundRuleBroken,
    came_back,
    direct_refund,
    outbound_carrier,
    return_refund,
    whole_by_itself,
)
from services.refunds.schemas import RefundRequest
from services.refunds.store import LEASE, REVERTIBLE, UNLEASED, RefundRecord, RefundStore
from shared import tracing
from shared.auth import Principal
from shared.clock import Clock
from shared.models import Breakdown, Order, Refund, RefundStatus, Return
from shared.money import Money
from shared.postage import postage_paid_by_buyer

log = logging.getLogger(__name__)
# Deadlines of due refunds remembered per process; beyond it the deadline job's sweeps find them.
MAX_KNOWN_DEADLINES = 100_000


class OrderNotKnownYet(Exception):
    """`order.delivered` has not reached us yet: the event is retried later by the bus."""


class Refunds:
    def __init__(self, store: RefundStore, payer: Payer, clock: Clock) -> None:
        self.store, self.payer, self.clock = store, payer, clock
        self._deadlines: list[datetime] = []  # a heap: the due refunds opened by this process

    # ---- from events ------------------------------------------------------------------------

    async def open_for_return(self, ret: Return) -> Refund | None:
        """A received return (or a returnless authorization): pay now in auto mode, else make it due.

        Idempotent on its own (the bus keeps no inbox for refunds): the refund's id is a function of
        the return's, so a duplicate finds the refund there and at most helps pay it; postage counts
        once per return; the gateway key is stored before any call. A return being replaced opens
        nothing (its replacement falling through does: `return.replacement_unavailable`).
        """
        if ret.replacing():  # its lines are replaced, not refunded (a concession is a direct refund)
            log.info("replacing return: no refund", extra={"return_id": ret.return_id})
            return None
        order, closed = await self.store.order_and_closed(ret.order_id)
        if closed.get(ret.return_id, 0) > ret.version:
            log.info("return closed since: no refund", extra={"return_id": ret.return_id})
            return None
        if order is None:
            raise OrderNotKnownYet(ret.order_id)
        breakdown = return_refund(ret, await self._outbound(order, ret))
        await self._count_postage(ret)
        now = self.clock.now()
        returnless = ret.authorization is not None and ret.authorization.returnless
        # The deadline is the one the returns service set at receipt (and emailed to both parties);
        # it is kept in every mode, so refund timeliness can be measured against it.
        due_at = ret.refund_due_at if ret.received_at is not None else None
        pay_now = returnless or ret.policy.refund_mode != "manual"
        refund = domain.for_return(
            ret,
            breakdown,
            status=RefundStatus.PENDING if pay_now else RefundStatus.DUE,
            actor=domain.PLATFORM,
            now=now,
            due_at=due_at or now,
            bonus_percent=self.payer.bonus_percent(ret.marketplace),
        )
        record = RefundRecord(refund, order.payment, domain.gateway_key(refund.refund_id, 0), 0, None)
        # A refund to pay now is inserted claimed: the insert takes the lease a claim would.
        until = self.payer.lease_end() if pay_now else None
        watch = nullcontext() if until is None else self.payer.watched(refund.refund_id, until)
        with watch:
            created = await self.store.insert(
                refund,
                payment=record.payment,
                idempotency_key=record.idempotency_key,
                now=now,
                source_return=ret,
                leased_until=until,
            )
        log.info(
            "return refund opened" if created else "return refund exists",
            extra={"refund_id": refund.refund_id, "return_id": ret.return_id, "status": refund.status.value},
        )
        if not created:
            return await self.payer.pay(refund.refund_id)  # a no-op unless pending and unclaimed
        if until is None:
            self._note_deadline(refund.due_at or now)
            return refund
        return await self.payer.pay_created(record, until)

    def _note_deadline(self, due_at: datetime) -> None:
        """Remember the deadline of a due refund opened here, so the deadline job looks for overdue
        refunds when it comes instead of sweeping the collection on every run."""
        if len(self._deadlines) < MAX_KNOWN_DEADLINES:
            heapq.heappush(self._deadlines, due_at)

    def deadline_passed(self, now: datetime) -> bool:
        """A deadline this process knows of has come."""
        return bool(self._deadlines) and self._deadlines[0] <= now

    async def _outbound(self, order: Order, ret: Return) -> Money:
        """The order's outbound shipping when this return's refund carries it (once per order, decided
        from what its returns brought back: `outbound_carrier`), else zero."""
        if order.shipping_paid.amount == 0:
            return order.shipping_paid  # nothing to decide, nothing to record
        back = came_back(ret)
        if whole_by_itself(order, back):  # the usual return of a whole order: no other return counts
            return _carried(order, [back], ret.return_id)
        try:
            returns = await self.store.ledgers.note_came_back(order.order_id, back)
        except NoLedger:  # the order's copy is stored before its ledger: a crash between them
            raise OrderNotKnownYet(order.order_id) from None
        return _carried(order, returns, ret.return_id)

    async def _count_postage(self, ret: Return) -> None:
        """The return postage the buyer paid is part of what they paid: it raises the order's cap."""
        postage = postage_paid_by_buyer(ret)
        if postage is None:
            return
        try:
            counted = await self.store.ledgers.count_postage(ret.order_id, ret.return_id, postage.amount)
        except NoLedger:  # the order's copy is stored before its ledger: a crash between them
            raise OrderNotKnownYet(ret.order_id) from None
        if not counted:
            log.warning(
                "return postage too large to count toward the cap",
                extra={"return_id": ret.return_id, "order_id": ret.order_id, "postage": postage.amount},
            )

    # ---- requests ---------------------------------------------------------------------------

    async def request(self, principal: Principal, idempotency_key: str, body: RefundRequest) -> Refund:
        if body.return_id is not None:
            return await self._refund_return(principal, body.return_id, body)
        if body.order_id is not None:
            return await self._refund_order(principal, idempotency_key, body.order_id, body)
        raise InvalidRefund([("return_id", "give the return to refund, or order_id for a refund without a return")])

    async def _refund_return(self, principal: Principal, return_id: str, body: RefundRequest) -> Refund:
        if body.refund_shipping:
            raise InvalidRefund([("refund_shipping", "only for a refund without a return")])
        record = await self.store.get(domain.return_refund_id(return_id))
        ret = await self.store.received_return(return_id)
        if record is None or ret is None or not principal.may_access(seller_id=record.refund.seller.id):
            raise ReturnNotRefundable(f"Return {return_id} has not been received, or is not yours.")
        if body.order_id is not None and body.order_id != ret.order_id:
            raise InvalidRefund([("order_id", f"return {ret.return_id} belongs to another order")])
        refund = record.refund
        if refund.status not in (RefundStatus.DUE, RefundStatus.FAILED):
            raise RefundNotAllowed(
                f"The return's refund is already {refund.status.value}.",
                refund_id=refund.refund_id,
                refund_status=refund.status.value,
            )
        order = await self.store.order(ret.order_id)
        ledger = await self.store.ledgers.get(ret.order_id)
        if order is None or ledger is None:
            raise OrderNotFound(f"Order {ret.order_id} is unknown.")
        if refund.refund_id in ledger["reservations"]:  # failed without the gateway's answer: maybe paid
            raise RefundNotAllowed(
                "The gateway never answered for this refund and may have paid it: a support agent's retry "
                "(POST /v1/refunds/{id}/retry) asks it first.",
                refund_id=refund.refund_id,
                refund_status=refund.status.value,
            )
        back = came_back(ret)  # as at its opening: alone, or what the ledger recorded then
        outbound = _carried(order, [back] if whole_by_itself(order, back) else came_back_so_far(ledger), ret.return_id)
        breakdown = _checked(
            lambda: return_refund(
                ret,
                outbound,
                lines=_choices(body),
                return_shipping_concession=body.return_shipping_concession,
                other_concession=body.other_concession,
            )
        )
        try:
            await self._check_room(refund.order_id, breakdown, ledger)
        except RefundExceedsPaid:
            await self._unchanged(record)  # a concurrent refund of this return explains it better
            raise
        now = self.clock.now()
        replaced = domain.replace(
            refund, breakdown, principal.actor, now, bonus_percent=self.payer.bonus_percent(refund.marketplace)
        )
        previous = {name: value for name, value in refund.model_dump(mode="json").items() if name in REVERTIBLE}
        extra = {"previous": previous, LEASE: UNLEASED} | _new_round(record, refund.status == RefundStatus.FAILED)
        if not await self.store.save(refund.version, replaced, extra=extra):
            raise RefundNotAllowed("The refund changed meanwhile; read it again.", refund_id=refund.refund_id)
        log.info("return refund replaced", extra={"refund_id": refund.refund_id, "actor": principal.ref})
        return await self._pay_or_refuse(replaced.refund_id, breakdown)

    async def _refund_order(
        self, principal: Principal, idempotency_key: str, order_id: str, body: RefundRequest
    ) -> Refund:
        if body.return_shipping_concession is not None:
            raise InvalidRefund([("return_shipping_concession", "only for the refund of a return")])
        order = await self.store.order(order_id)
        if order is None or not principal.may_access(seller_id=order.seller.id):
            raise OrderNotFound(f"Order {order_id} is unknown, or not yours.")
        refund_id = domain.direct_refund_id(principal.ref, idempotency_key)
        existing = await self.store.get(refund_id)
        if existing is not None:  # the same request again, after a crash: finish what it started
            return await self.payer.pay(refund_id) or existing.refund
        breakdown = _checked(
            lambda: direct_refund(
                order,
                lines=_choices(body),
                refund_shipping=body.refund_shipping,
                other_concession=body.other_concession,
            )
        )
        await self._check_room(order.order_id, breakdown)
        now = self.clock.now()
        refund = domain.for_order(refund_id, order, breakdown, actor=principal.actor, now=now)
        if await self.store.insert(
            refund,
            payment=order.payment,
            idempotency_key=domain.gateway_key(refund_id, 0),
            now=now,
            requested_by=principal.ref,
        ):
            log.info(
                "direct refund opened",
                extra={"refund_id": refund_id, "order_id": order.order_id, "actor": principal.ref},
            )
        return await self._pay_or_refuse(refund_id, breakdown)

    async def retry(self, principal: Principal, refund_id: str) -> Refund:
        """An agent pays a failed refund again (a new round of gateway keys)."""
        record = await self.store.get(refund_id)
        if record is None:
            raise RefundNotFound(f"Refund {refund_id} does not exist.")
        try:
            again = domain.retry(record.refund, self.clock.now())
        except domain.IllegalTransition as exc:
            raise RefundNotAllowed(
                f"Only a failed refund can be retried; this one is {exc.status.value}.",
                refund_id=refund_id,
                refund_status=exc.status.value,
            ) from None
        extra = {LEASE: UNLEASED} | _new_round(record, True)
        if not await self.store.save(record.refund.version, again, extra=extra):
            raise RefundNotAllowed("The refund changed meanwhile; read it again.", refund_id=refund_id)
        log.info("refund retried", extra={"refund_id": refund_id, "actor": principal.ref})
        return await self.payer.pay(refund_id) or again

    async def _check_room(self, order_id: str, breakdown: Breakdown, ledger: dict[str, Any] | None = None) -> None:
        """Room for `breakdown` on the order (a check before paying: reserving is the guard); `ledger`
        when the caller has just read it."""
        ledger = ledger or await self.store.ledgers.get(order_id)
        if ledger is None:
            raise OrderNotFound(f"Order {order_id} is unknown.")
        if breakdown.total.amount > ledger["available"]:
            raise RefundExceedsPaid(breakdown.total, ledger["available"])

    async def _unchanged(self, record: RefundRecord) -> None:
        current = await self.store.get(record.refund.refund_id)
        if current is not None and current.refund.version != record.refund.version:
            raise RefundNotAllowed(
                f"The return's refund is now {current.refund.status.value}.",
                refund_id=record.refund.refund_id,
                refund_status=current.refund.status.value,
            )

    async def _pay_or_refuse(self, refund_id: str, breakdown: Breakdown) -> Refund:
        try:
            refund = await self.payer.pay(refund_id, refuse_over_cap=True)
        except CapExceeded as exc:  # a concurrent refund of the same order took the room first
            raise RefundExceedsPaid(breakdown.total, exc.available) from None
        if refund is None:
            raise RefundNotFound(f"Refund {refund_id} does not exist.")
        return refund

    # ---- the refund deadline ----------------------------------------------------------------

    async def take_over_overdue(self, now: datetime, limit: int) -> int:
        """Refunds the seller did not issue by their deadline: the platform pays the computed one."""
        while self._deadlines and self._deadlines[0] <= now:
            heapq.heappop(self._deadlines)
        taken = 0
        records = await self.store.overdue(now, limit)
        if len(records) == limit:
            heapq.heappush(self._deadlines, now)  # there may be more: look again at the next run
        for record in records:
            pending = domain.take_over(record.refund, now)
            # When recording, each take-over starts a trace of its own: the payment and its events join it.
            with tracing.span("deadline refund take-over", refund_id=pending.refund_id):
                if not await self.store.save(record.refund.version, pending, extra={LEASE: UNLEASED}):
                    continue  # another replica (or the seller) got there first
                taken += 1
                log.info(
                    "refund deadline passed: platform refunds",
                    extra={"refund_id": pending.refund_id, "return_id": pending.return_id},
                )
                await self.payer.pay(pending.refund_id)
        return taken

    async def watch_stalled(self, until: datetime, limit: int) -> bool:
        """Sweep the store for pending refunds whose pay lease ends by `until` (their payer may have
        died) and remember them, to resume each when its lease ends; True when the batch was full."""
        found = await self.store.stalled(until, limit)
        for refund_id, lease_end in found:
            self.payer.interrupted.setdefault(refund_id, lease_end)
        return len(found) == limit

    async def resume_stalled(self, now: datetime, limit: int) -> int:
        """Resume the payments known to have stalled whose lease has ended (`Payer.pay` claims each
        by `_id`, so a payment someone finished or renewed meanwhile is left alone)."""
        ended = [refund_id for refund_id, until in self.payer.interrupted.items() if until <= now][:limit]
        for refund_id in ended:
            del self.payer.interrupted[refund_id]
            await self.payer.pay(refund_id)
        return len(ended)


def _new_round(record: RefundRecord, needed: bool) -> dict[str, object]:
    if not needed:
        return {}
    round_ = record.key_round + 1
    return {"key_round": round_, "idempotency_key": domain.gateway_key(record.refund.refund_id, round_)}


def _choices(body: RefundRequest) -> list[LineChoice] | None:
    return None if body.lines is None else [LineChoice(line.line_id, line.quantity) for line in body.lines]


def _checked(compute: Callable[[], Breakdown]) -> Breakdown:
    try:
        breakdown = compute()
    except RefundRuleBroken as exc:
        raise InvalidRefund([(p.field, p.reason) for p in exc.problems]) from None
    if breakdown.total.amount <= 0:
        raise InvalidRefund([("lines", "nothing to refund: the total must be positive")])
    return breakdown


def _carried(order: Order, returns: list[CameBack], return_id: str) -> Money:
    carrier = outbound_carrier(order, returns)
    return order.shipping_paid if carrier == return_id else Money.zero(order.currency)
