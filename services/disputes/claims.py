"""What callers ask of claims: load, decide with the pure domain, write once, wake the relay."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from services.disputes import domain
from services.disputes.domain import ClaimProblem, IllegalTransition
from services.disputes.eligibility import OpenClaimExists, file_claim
from services.disputes.errors import ClaimNotFound, ConcurrentChange, from_domain, rule_violation
from services.disputes.orders import OrderBook
from services.disputes.rulebook import DisputeRules
from services.disputes.schemas import ClaimRequest, DecideBody
from services.disputes.store import ClaimsStore, DuplicateKeyError
from shared import acting
from shared.auth import Principal
from shared.clock import Clock
from shared.dispute_models import Claim
from shared.models import Refund
from shared.mongo import as_stored
from shared.rules import FieldProblem

log = logging.getLogger(__name__)

# Who may do what to a claim (besides seeing it at all). A service acts for a named actor.
ACTION_ROLES: dict[str, frozenset[str]] = {
    "file": frozenset({"buyer", "agent"}),
    "respond": frozenset({"seller", "agent"}),
    "withdraw": frozenset({"buyer", "agent"}),
    "decide": frozenset({"agent"}),
}
ID_NAMESPACE = uuid.UUID("0c4f3a52-91d6-4c07-8a2e-5b7d13e9f6a1")
ATTEMPTS = 8

Step = Callable[[Claim, datetime], Claim]


def check_role(principal: Principal, action: str) -> None:
    acting.check_role(principal, action, ACTION_ROLES, "claim")


def claim_id_for(principal: Principal, idempotency_key: str | None) -> str:
    return acting.keyed_id("clm", ID_NAMESPACE, principal, idempotency_key)


def _logged(claim: Claim, message: str, actor: str) -> None:
    extra = {"claim_id": claim.claim_id, "order_id": claim.order_id, "version": claim.version}
    log.info(message, extra=extra | {"status": claim.status.value, "actor": actor})


class ClaimDesk:
    def __init__(
        self,
        store: ClaimsStore,
        orders: OrderBook,
        rules: DisputeRules,
        clock: Clock,
        on_commit: Callable[..., None] = lambda *_, **__: None,  # OutboxRelay.wake(doc_id, collection=, entries=)
    ) -> None:
        self.store, self.orders, self.rules, self.clock, self.on_commit = store, orders, rules, clock, on_commit

    def now(self) -> datetime:
        return as_stored(self.clock.now())

    def committed(self, claim: Claim, handover: dict) -> None:
        self.on_commit(claim.claim_id, collection=self.store.claims, **handover)

    async def file(self, request: ClaimRequest, principal: Principal, idempotency_key: str | None = None) -> Claim:
        check_role(principal, "file")
        facts = await self.orders.get(request.order_id)
        if facts is None or not principal.may_access(buyer_id=facts.order.buyer.id):
            raise rule_violation([FieldProblem("order_id", "no delivered order with this id")])
        claim_id = claim_id_for(principal, idempotency_key)
        for _ in range(ATTEMPTS):
            existing, order_seq = await self.store.claims_of_order(request.order_id)
            if idempotency_key is not None and (earlier := next((c for c in existing if c.claim_id == claim_id), None)):
                return earlier  # a retry of a request that was filed before its response was stored
            now = self.now()
            rules = self.rules.claims(facts.order.marketplace)  # the order's marketplace's A-to-z rules
            try:
                claim = file_claim(facts, request, existing, rules, claim_id=claim_id, actor=principal.actor, now=now)
            except (ClaimProblem, OpenClaimExists) as exc:
                raise from_domain(exc) from None
            try:
                outbox = await self.store.insert_claim(claim, order_seq, ["claim.filed"])
            except DuplicateKeyError:
                continue  # a concurrent request took this slot: check again against its claim
            self.committed(claim, {"entries": outbox})
            _logged(claim, "claim filed", principal.ref)
            return claim
        raise ConcurrentChange()

    async def visible(self, claim_id: str, principal: Principal) -> Claim:
        """The claim if the caller may see it; someone else's claim does not exist for them."""
        claim = await self.store.get_claim(claim_id)
        if claim is None or not principal.may_access(buyer_id=claim.buyer.id, seller_id=claim.seller.id):
            raise ClaimNotFound(f"No claim {claim_id}.")
        return claim

    async def act(self, claim_id: str, principal: Principal, action: str, event_type: str, step: Step) -> Claim:
        """One transition asked over HTTP: 409 when illegal now or when another one got in first."""
        check_role(principal, action)
        claim = await self.visible(claim_id, principal)
        now = self.now()
        try:
            after = step(claim, now)
        except (IllegalTransition, ClaimProblem) as exc:
            raise from_domain(exc) from None
        handover = await self.store.commit_claim(claim, after, [event_type], now)
        if handover is None:
            raise ConcurrentChange()
        self.committed(after, handover)
        _logged(after, f"claim {action}", principal.ref)
        return after

    async def decide(self, claim_id: str, principal: Principal, body: DecideBody) -> Claim:
        """An agent's decision (the refunds service holds a grant to what the order still has)."""
        event_type = "claim.granted" if body.outcome == "grant" else "claim.denied"
        actor = principal.actor
        return await self.act(
            claim_id, principal, "decide", event_type, lambda c, now: domain.decide(c, body, actor, now)
        )

    # ---- what the refunds service tells us ----------------------------------------------------

    async def refund_issued(self, refund: Refund) -> None:
        paid_at = refund.issued_at

        def close(claim: Claim, now: datetime) -> Claim | None:
            return domain.close_paid(claim, refund.refund_id, refund.amount, paid_at or now, now)

        await self._follow(refund.claim_id, close)

    async def refund_failed_already_refunded(self, refund: Refund) -> None:
        await self._follow(refund.claim_id, lambda c, now: domain.close_already_refunded(c, refund.refund_id, now))

    async def _follow(self, claim_id: str | None, step: Callable[[Claim, datetime], Claim | None]) -> None:
        """Apply an event's effect, conditional on the version read; a redelivery finds it done."""
        for _ in range(ATTEMPTS):
            claim = await self.store.get_claim(claim_id) if claim_id else None
            if claim is None:
                log.warning("refund of an unknown claim ignored", extra={"claim_id": claim_id})
                return
            now = self.now()
            try:
                after = step(claim, now)
            except IllegalTransition as exc:
                log.warning("refund does not apply to the claim", extra={"claim_id": claim_id, "reason": str(exc)})
                return
            if after is None:
                return  # closed by an earlier copy of the event
            handover = await self.store.commit_claim(claim, after, ["claim.closed"], now)
            if handover is not None:
                self.committed(after, handover)
                _logged(after, "claim closed", "platform:disputes")
                return
        raise ConcurrentChange()  # the bus retries later
