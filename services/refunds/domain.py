"""The refund aggregate: ids, idempotency keys, state transitions and the events they emit. Pure."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from services.refunds import claim_policy, destination
from shared.dispute_models import Claim
from shared.events import CloudEvent, new_event
from shared.models import Actor, Breakdown, Order, Refund, RefundKind, RefundStatus, Return
from shared.money import Money

SERVICE = "refunds"
PLATFORM = Actor(role="platform", id=SERVICE)
_IDS = uuid.UUID("6f1c7c9e-3f0e-4d55-9d4e-2b8a3c5e7a10")
# Refunds of a sum asked for rather than of lines: capped by what is left of the order when opened,
# and shrunk to it by the payer if a concurrent refund takes part of it meanwhile (`cap`).
CAPPED_KINDS = frozenset({RefundKind.CLAIM, RefundKind.OFFER})


class IllegalTransition(Exception):
    """The refund is not in a state that allows this; nothing changes (409)."""

    def __init__(self, refund: Refund, action: str) -> None:
        super().__init__(f"cannot {action} a refund that is {refund.status}")
        self.refund_id, self.status, self.action = refund.refund_id, refund.status, action


def return_refund_id(return_id: str) -> str:
    """A return has one refund, ever: its id is a function of the return id."""
    return "rf_" + uuid.uuid5(_IDS, f"return:{return_id}").hex


def direct_refund_id(caller: str, idempotency_key: str) -> str:
    """A retried request (same caller, same Idempotency-Key) lands on the same refund."""
    return "rf_" + uuid.uuid5(_IDS, f"direct:{caller}:{idempotency_key}").hex


def offer_refund_id(offer_id: str) -> str:
    """An accepted offer is paid once, ever: its refund's id is the offer's."""
    return "rf_" + offer_id


def gateway_key(refund_id: str, round_: int) -> str:
    """The gateway idempotency key of one round of attempts; an agent retry starts a new round."""
    return refund_id if round_ == 0 else f"{refund_id}:retry-{round_}"


def gateway_keys(refund_id: str, through_round: int) -> list[str]:
    """Every key a refund can have paid under by round `through_round`: rounds 0..n, oldest first."""
    return [gateway_key(refund_id, round_) for round_ in range(through_round + 1)]


def unpayable(refund: Refund) -> str | None:
    """Why a refund can never be paid, whatever the gateway: it comes to zero or less."""
    if refund.amount.amount > 0:
        return None
    return (
        f"nothing to refund: the refund comes to {refund.amount.amount} {refund.currency} "
        "(minor units), and only a positive amount is ever paid"
    )


def for_return(
    ret: Return,
    breakdown: Breakdown,
    *,
    status: RefundStatus,
    actor: Actor,
    now: datetime,
    due_at: datetime | None = None,
    automatic: bool = False,
    bonus_percent: Decimal,
) -> Refund:
    kind = RefundKind.RETURNLESS if ret.authorization and ret.authorization.returnless else RefundKind.RETURN
    refund = _new(
        return_refund_id(ret.return_id),
        kind,
        ret.return_id,
        ret,
        breakdown,
        status=status,
        actor=actor,
        now=now,
        received_at=ret.received_at,
        due_at=due_at,
        automatic=automatic,
    )
    return _for(refund, ret, bonus_percent)


def for_offer(ret: Return, order: Order, amount: int, *, now: datetime, bonus_percent: Decimal) -> Refund:
    """The one refund paying the offer the buyer accepted to keep the item (`ret.settlement`): a sum
    like a claim's (no lines), on behalf of whoever made the offer, answering the accepting version."""
    settlement = ret.settlement
    if settlement is None or settlement.offer_id is None:
        raise ValueError(f"return {ret.return_id} has no accepted offer")
    offer = next((offer for offer in ret.offers if offer.offer_id == settlement.offer_id), None)
    refund = _new(
        offer_refund_id(settlement.offer_id),
        RefundKind.OFFER,
        ret.return_id,
        order,
        claim_policy.breakdown(Money(amount=amount, currency=order.currency)),
        status=RefundStatus.PENDING,
        actor=PLATFORM if offer is None else offer.made_by,
        now=now,
    )
    return _for(refund.model_copy(update={"offer_id": settlement.offer_id}), ret, bonus_percent)


def _for(refund: Refund, ret: Return, bonus_percent: Decimal) -> Refund:
    """A refund of the return, as of the version it answers, where its buyer asked it to go."""
    to = destination.of_return(refund.kind, ret)
    return destination.credited(
        refund.model_copy(update={"return_version": ret.version, "destination": to}), bonus_percent
    )


def for_order(refund_id: str, order: Order, breakdown: Breakdown, *, actor: Actor, now: datetime) -> Refund:
    return _new(
        refund_id,
        RefundKind.DIRECT,
        None,
        order,
        breakdown,
        status=RefundStatus.PENDING,
        actor=actor,
        now=now,
    )


def for_claim(claim: Claim, order: Order, amount: int, *, now: datetime) -> Refund:
    """The one refund paying a claim: its id is the one the disputes service chose (`payment.refund_id`)."""
    if claim.payment is None:
        raise ValueError(f"claim {claim.claim_id} has no payment")
    refund = _new(
        claim.payment.refund_id,
        RefundKind.CLAIM,
        None,  # a claim about a return does not refund the return: that return's own refund may still come
        order,
        claim_policy.breakdown(Money(amount=amount, currency=order.currency)),
        status=RefundStatus.PENDING,
        actor=claim_policy.actor(claim, PLATFORM),
        now=now,
        automatic=claim_policy.automatic(claim),
    )
    return refund.model_copy(update={"claim_id": claim.claim_id})


def cap(refund: Refund, available: int, now: datetime, *, bonus_percent: Decimal) -> Refund:
    """A claim's or an offer's refund that no longer fits what is left of its order pays that rest instead."""
    if refund.status != RefundStatus.PENDING or refund.kind not in CAPPED_KINDS:
        raise IllegalTransition(refund, "cap")
    if not 0 < available < refund.amount.amount:
        raise ValueError(f"cannot cap a refund of {refund.amount.amount} to {available}")
    breakdown = claim_policy.breakdown(Money(amount=available, currency=refund.currency))
    return destination.credited(_change(refund, now, breakdown=breakdown, amount=breakdown.total), bonus_percent)


def _new(
    refund_id: str,
    kind: RefundKind,
    return_id: str | None,
    of: Order | Return,
    breakdown: Breakdown,
    *,
    status: RefundStatus,
    actor: Actor,
    now: datetime,
    received_at: datetime | None = None,
    due_at: datetime | None = None,
    automatic: bool = False,
) -> Refund:
    return Refund(
        refund_id=refund_id,
        kind=kind,
        return_id=return_id,
        order_id=of.order_id,
        marketplace=of.marketplace,
        currency=of.currency,
        buyer=of.buyer,
        seller=of.seller,
        status=status,
        version=1,
        amount=breakdown.total,
        breakdown=breakdown,
        automatic=automatic,
        actor=actor,
        received_at=received_at,
        due_at=due_at,
        created_at=now,
        updated_at=now,
    )


def _change(refund: Refund, now: datetime, **fields: object) -> Refund:
    return refund.model_copy(update={**fields, "version": refund.version + 1, "updated_at": now})


def replace(refund: Refund, breakdown: Breakdown, actor: Actor, now: datetime, *, bonus_percent: Decimal) -> Refund:
    """The seller's (or an agent's) refund of a return takes the place of the due or failed one."""
    if refund.status not in (RefundStatus.DUE, RefundStatus.FAILED):
        raise IllegalTransition(refund, "refund again")
    changed = _change(
        refund,
        now,
        status=RefundStatus.PENDING,
        breakdown=breakdown,
        amount=breakdown.total,
        actor=actor,
        automatic=False,
        failure_reason=None,
    )
    return destination.credited(changed, bonus_percent)


def take_over(refund: Refund, now: datetime) -> Refund:
    """The seller let the refund deadline pass: the platform pays the computed refund itself."""
    if refund.status != RefundStatus.DUE:
        raise IllegalTransition(refund, "take over")
    return _change(refund, now, status=RefundStatus.PENDING, actor=PLATFORM, automatic=True)


def retry(refund: Refund, now: datetime) -> Refund:
    if refund.status != RefundStatus.FAILED:
        raise IllegalTransition(refund, "retry")
    return _change(refund, now, status=RefundStatus.PENDING, failure_reason=None)


def issue(refund: Refund, now: datetime, *, gateway: str | None, reference: str | None) -> Refund:
    if refund.status != RefundStatus.PENDING:
        raise IllegalTransition(refund, "issue")
    return _change(refund, now, status=RefundStatus.ISSUED, issued_at=now, gateway=gateway, gateway_reference=reference)


def fail(refund: Refund, now: datetime, *, gateway: str | None, reason: str) -> Refund:
    if refund.status != RefundStatus.PENDING:
        raise IllegalTransition(refund, "fail")
    return _change(refund, now, status=RefundStatus.FAILED, gateway=gateway, failure_reason=reason)


def events(refund: Refund) -> list[CloudEvent]:
    """What a refund's current state announces: issued (and the return refunded) or failed."""
    if refund.status == RefundStatus.ISSUED:
        types = [("refund.issued", refund.refund_id)]
        if refund.return_id is not None:
            types.append(("return.refunded", refund.return_id))
    elif refund.status == RefundStatus.FAILED:
        types = [("refund.failed", refund.refund_id)]
    else:
        return []
    return [
        new_event(
            event_type,
            service=SERVICE,
            subject=subject,
            data=refund,
            sequence=_sequence(refund, event_type),
            time=refund.updated_at,
            event_id=str(uuid.uuid5(_IDS, f"{refund.refund_id}:{event_type}:{refund.version}")),
        )
        for event_type, subject in types
    ]


def _sequence(refund: Refund, event_type: str) -> int:
    """`return.refunded` is about the return: it carries the version the return takes by it (the
    received or returnless-authorized version + 1), so subscribers ordering per return see it last."""
    if event_type == "return.refunded" and refund.return_version is not None:
        return refund.return_version + 1
    return refund.version
