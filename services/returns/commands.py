"""What callers ask of the returns service: load, decide with the pure domain, write once, wake the relay."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.returns import domain, replacements
from services.returns.domain import IllegalTransition
from services.returns.eligibility import open_return, returned_so_far
from services.returns.errors import ConcurrentChange, ReturnNotFound, from_domain, rule_violation
from services.returns.policy import MarketplaceRules, PolicyViolation, SellerPolicy, default_policy
from services.returns.rulebook import RuleBook
from services.returns.schemas import ReturnRequest
from services.returns.store import DuplicateKeyError, ReturnsStore
from shared import acting
from shared.auth import Principal
from shared.clock import Clock
from shared.http import Forbidden, IfMatch, PreconditionFailed
from shared.models import Order, Refund, Return
from shared.mongo import as_stored as millis
from shared.rules import FieldProblem, RulesBroken

log = logging.getLogger(__name__)

# Who may do what to a return (besides seeing it at all). Services act for a named actor.
ACTION_ROLES: dict[str, frozenset[str]] = {
    "create": frozenset({"buyer", "agent"}),
    "authorize": frozenset({"seller", "agent"}),
    "reject": frozenset({"seller", "agent"}),
    "close": frozenset({"buyer", "seller", "agent"}),
    "ship": frozenset({"buyer", "agent"}),
    "receive": frozenset({"seller", "agent"}),
    "feedback": frozenset({"buyer", "agent"}),
    # The order system confirms on its own account (`PUT /v1/returns/{id}/replacement`).
    "ship_replacement": frozenset({"service", "seller", "agent"}),
    "replacement_unavailable": frozenset({"service", "seller", "agent"}),
    "make_offer": frozenset({"seller", "agent"}),
    "accept_offer": frozenset({"buyer", "agent"}),
    "decline_offer": frozenset({"buyer", "agent"}),
}
EVENT_OF = {
    "authorize": "return.authorized",
    "reject": "return.rejected",
    "close": "return.closed",
    "ship": "return.shipped",
    "receive": "return.received",
    "feedback": "return.feedback_received",
    **replacements.EVENT_OF,
    "make_offer": "return.offer_made",
    "accept_offer": "return.offer_accepted",
    "decline_offer": "return.offer_declined",
}
ID_NAMESPACE = uuid.UUID("6f1d8c1e-6a43-4b8e-9a51-2f0d7c3b9e10")
CREATE_ATTEMPTS = 8

Step = Callable[[Return, datetime], Return]


def check_role(principal: Principal, action: str) -> None:
    if principal.actor.role == "service" and "service" in ACTION_ROLES[action]:
        return
    acting.check_role(principal, action, ACTION_ROLES, "return")


def return_id_for(principal: Principal, idempotency_key: str | None) -> str:
    return acting.keyed_id("ret", ID_NAMESPACE, principal, idempotency_key)


def _log_change(ret: Return, principal: Principal, message: str, *args: object) -> None:
    """A return written on a caller's behalf: which one, its order, version and status now, and who asked."""
    extra = {"return_id": ret.return_id, "order_id": ret.order_id, "version": ret.version, "status": ret.status.value}
    log.info(message, *args, extra={**extra, "actor": principal.ref})


class OrderReads:
    """An order and its returns, read at once from the moment this is made.

    The create endpoint starts them before its Idempotency-Key is claimed: they are reads, so a
    replayed or refused request merely drops them, and a create waits for one store round trip less
    (claim and reads together, then the seller's policy and the buyer's flag, then the insert; the
    stored answer is written after the response). Reading the order's returns a moment early is as
    safe as reading them later: the new return's insert takes the next free slot of the order or
    fails, and `open` then reads again.
    """

    def __init__(self, store: ReturnsStore, order_id: str) -> None:
        self._reads = asyncio.gather(store.get_order(order_id), store.returns_of_order(order_id))

    async def result(self) -> tuple[Order | None, tuple[list[Return], int]]:
        return await self._reads

    def drop(self) -> None:
        """Forget the reads if no one took them (a replay, or a refusal before `open` ran)."""
        if not self._reads.done():
            self._reads.cancel()
        # A failed read no one awaited, or the CancelledError a gather cancelled while its reads ran
        # ends with, is not "never retrieved" (asyncio logs that as an error).
        self._reads.add_done_callback(_retrieve)


def _retrieve(reads: asyncio.Future[Any]) -> None:
    if not reads.cancelled():
        reads.exception()


class Lifecycle:
    def __init__(
        self,
        store: ReturnsStore,
        book: RuleBook,
        clock: Clock,
        on_commit: Callable[..., None] = lambda *_, **__: None,  # OutboxRelay.wake(doc_id, entries=outbox)
    ) -> None:
        self.store, self.book, self.clock, self.on_commit = store, book, clock, on_commit

    def now(self) -> datetime:
        return millis(self.clock.now())

    def rules_for(self, marketplace: str) -> MarketplaceRules:
        """The rules of an order's or a return's marketplace (services/returns/rulebook.py)."""
        return self.book.rules_for(marketplace)

    async def policy_for(self, seller_id: str, marketplace: str) -> SellerPolicy:
        """The seller's policy in that marketplace, or the marketplace's default one."""
        stored = await self.store.get_policy(seller_id, marketplace)
        return stored or default_policy(self.rules_for(marketplace))

    def read_order(self, order_id: str) -> OrderReads:
        """Start reading what a create needs first (see OrderReads)."""
        return OrderReads(self.store, order_id)

    async def open(
        self,
        request: ReturnRequest,
        principal: Principal,
        idempotency_key: str | None = None,
        reads: OrderReads | None = None,
    ) -> Return:
        """Open a return on `request.order_id`; `reads` are that order's, when the caller started them."""
        check_role(principal, "create")
        if request.policy_exception and principal.actor.role != "agent":
            raise Forbidden("Only agents may open a return outside the policy.", field="policy_exception")
        order, (existing, order_seq) = await (reads or self.read_order(request.order_id)).result()
        if order is None or not principal.may_access(buyer_id=order.buyer.id):
            raise rule_violation([FieldProblem("order_id", "no delivered order with this id")])
        return_id = return_id_for(principal, idempotency_key)
        try:
            rules = self.rules_for(order.marketplace)
        except RulesBroken as exc:  # an order stored before its marketplace left the file
            raise rule_violation(exc.problems) from None
        # Both need the order's parties: one store round trip for the two, after the order's.
        policy, flagged = await asyncio.gather(
            self.policy_for(order.seller.id, order.marketplace),
            self.store.buyer_flagged(order.buyer.id),
        )
        for attempt in range(CREATE_ATTEMPTS):
            # A retried request finds its return among the order's (read anyway); only after our
            # insert was refused, or when the rules refuse it, may it be on another order: by `_id`.
            if attempt:
                if idempotency_key is not None and (earlier := await self.store.get_return(return_id)):
                    return earlier
                existing, order_seq = await self.store.returns_of_order(order.order_id)
            if idempotency_key is not None and (
                earlier := next((r for r in existing if r.return_id == return_id), None)
            ):
                return earlier
            now = self.now()
            try:
                changes = open_return(
                    order,
                    request,
                    return_id=return_id,
                    policy=policy,
                    rules=rules,
                    already_returned=returned_so_far(existing),
                    buyer_flagged=flagged,
                    actor=principal.actor,
                    now=now,
                )
            except PolicyViolation as exc:
                if idempotency_key is not None and (earlier := await self.store.get_return(return_id)):
                    return earlier
                raise rule_violation(exc.problems) from None
            try:
                outbox = await self.store.insert_return(changes, order_seq, now)
            except DuplicateKeyError:
                continue  # a concurrent request took this slot (or this id): check again against it
            self.on_commit(changes[-1][1].return_id, entries=outbox)
            created = changes[-1][1]
            _log_change(created, principal, "return opened")
            return created
        raise ConcurrentChange()

    async def visible_return(self, return_id: str, principal: Principal) -> Return:
        """The return if the caller may see it; someone else's return does not exist for them."""
        ret = await self.store.get_return(return_id)
        if ret is None or not principal.may_access(buyer_id=ret.buyer.id, seller_id=ret.seller.id):
            raise ReturnNotFound(f"No return {return_id}.")
        return ret

    async def act(
        self, return_id: str, principal: Principal, action: str, expected: IfMatch | None, step: Step
    ) -> Return:
        """One transition asked over HTTP: 409 when illegal now or when another one got in first;
        412 when the caller based it on a version (If-Match) that is no longer current, whether
        found before the write or by losing the compare-and-set to another writer. A step that
        answers the return unchanged (a repeated confirmation) writes nothing; what follows from
        the new version (replacements.follow_ups) is written with it.

        The return as this process last wrote it (`store.recent`) is tried first, without a read: its
        write is a compare-and-set on the version, so a stale copy writes nothing. Every answer but a
        write made from it (a refusal, an error, a no-op, a lost compare-and-set) is decided again on a
        fresh read, so a stale copy never shows."""
        check_role(principal, action)
        recent = self.store.recent(return_id)
        if (
            recent is not None
            and principal.may_access(buyer_id=recent.buyer.id, seller_id=recent.seller.id)
            and (expected is None or expected.admits(recent.version))
        ):
            now = self.now()
            try:
                changes = self._changes(recent, action, step, now)
            except Exception:  # noqa: BLE001 - whatever the copy leads to is decided again below
                changes = None
            if (
                changes is not None
                and (written := await self._write(recent, changes, principal, action, now)) is not None
            ):
                return written
        ret = await self.visible_return(return_id, principal)
        if expected is not None:
            expected.check(ret.version, "return")
        now = self.now()
        try:
            changes = self._changes(ret, action, step, now)
        except (IllegalTransition, RulesBroken) as exc:  # PolicyViolation, or a marketplace no longer served
            raise from_domain(exc) from None
        if changes is None:
            return ret
        written = await self._write(ret, changes, principal, action, now)
        if written is None:
            if expected is not None:  # the version the caller named stopped being current meanwhile
                current = await self.visible_return(return_id, principal)  # rare: a lost race, for its ETag
                raise PreconditionFailed(
                    "The return changed while this request was processed; reload it and retry.",
                    current_etag=f'"{current.version}"',
                )
            raise ConcurrentChange()
        return written

    @staticmethod
    def _changes(ret: Return, action: str, step: Step, now: datetime) -> list[tuple[str | None, Return]] | None:
        """What `step` makes of `ret`, with what follows from it; None when it changes nothing."""
        after = step(ret, now)
        return None if after is ret else replacements.with_follow_ups(EVENT_OF[action], after, now)

    async def _write(
        self, ret: Return, changes: list[tuple[str | None, Return]], principal: Principal, action: str, now: datetime
    ) -> Return | None:
        """The new version, written if `ret` is still current; None when another writer got in first."""
        handover = await self.store.apply(ret, changes, now)
        if handover is None:
            return None
        self.on_commit(ret.return_id, **handover)
        after = changes[-1][1]
        _log_change(after, principal, "return %s", action)
        return after

    # ---- what other services tell us ----------------------------------------------------------

    async def refunded(self, refund: Refund) -> None:
        await self._follow(refund.return_id, "refund", lambda ret, now: domain.mark_refunded(ret, refund, now))

    async def refund_failed(self, refund: Refund) -> None:
        await self._follow(
            refund.return_id, "refund_failed", lambda ret, now: domain.record_refund_failure(ret, refund, now)
        )

    async def _follow(
        self, return_id: str | None, action: str, step: Callable[[Return, datetime], Return | None]
    ) -> None:
        """Apply an event's effect, retrying on a concurrent change; nothing to do is fine. The copy
        this process remembers is tried first, as in `act`: only a write made from it counts."""
        fields = {"return_id": return_id, "action": action}
        recent = self.store.recent(return_id) if return_id else None
        if recent is not None:
            now = self.now()
            try:
                after = step(recent, now)
            except Exception:  # noqa: BLE001 - decided again on a fresh read below
                after = None
            # The refunds service published this change itself: record it, publish nothing.
            if after is not None and await self.store.apply(recent, [(None, after)], now) is not None:
                return
        for _ in range(CREATE_ATTEMPTS):
            ret = await self.store.get_return(return_id) if return_id else None
            if ret is None:
                log.warning("event for an unknown return ignored", extra=fields)
                return
            now = self.now()
            try:
                after = step(ret, now)
            except IllegalTransition as exc:
                log.warning("event does not apply to the return", extra=fields | {"reason": str(exc)})
                return
            if after is None:
                return
            if await self.store.apply(ret, [(None, after)], now) is not None:
                return
        raise ConcurrentChange()  # the bus retries later
