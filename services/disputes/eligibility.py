"""Whether a buyer may file a claim: the window, one open claim per order, the amount, the reason's
preconditions, checked against what the service knows of the order (OrderFacts). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.disputes.domain import ClaimProblem, amount_problems
from services.disputes.orders import OrderFacts
from services.disputes.schemas import ClaimRequest
from shared import marketplace_models
from shared.dispute_models import OPEN_STATUSES, RETURN_REASONS, Claim, ClaimReason, ClaimStatus, Step
from shared.models import Actor, Party, ReturnStatus
from shared.rules import FieldProblem


@dataclass(frozen=True)
class ClaimRules:
    """One marketplace's A-to-z rules as durations (services/disputes/rulebook.py picks the marketplace)."""

    opens_after: timedelta = timedelta(days=15)
    window: timedelta = timedelta(days=90)
    response_time: timedelta = timedelta(hours=72)
    reminder_lead: timedelta = timedelta(hours=24)

    @classmethod
    def of(cls, rules: marketplace_models.ClaimRules) -> ClaimRules:
        return cls(
            opens_after=timedelta(days=rules.opens_after_days),
            window=timedelta(days=rules.window_days),
            response_time=timedelta(hours=rules.response_hours),
            reminder_lead=timedelta(hours=rules.reminder_hours),
        )


class OpenClaimExists(Exception):
    """The order has an open claim already (409)."""

    def __init__(self, claim_id: str) -> None:
        super().__init__(f"the order has an open claim already: {claim_id}")
        self.claim_id = claim_id


def open_claim(claims: Iterable[Claim]) -> Claim | None:
    return next((claim for claim in claims if claim.status in OPEN_STATUSES), None)


def _window_problems(facts: OrderFacts, request: ClaimRequest, rules: ClaimRules, now: datetime) -> list[FieldProblem]:
    ordered = facts.order.ordered_at
    opens = ordered if request.reason in RETURN_REASONS else ordered + rules.opens_after
    if now < opens:
        return [FieldProblem("order_id", f"a {request.reason} claim may be filed from {opens.isoformat()}")]
    if now > ordered + rules.window:
        return [
            FieldProblem(
                "order_id", f"claims on this order could be filed until {(ordered + rules.window).isoformat()}"
            )
        ]
    return []


def _reason_problems(facts: OrderFacts, request: ClaimRequest, now: datetime) -> list[FieldProblem]:
    if request.reason not in RETURN_REASONS:
        problems = []
        if request.return_id is not None:
            problems.append(FieldProblem("return_id", "only for RETURN_NOT_REFUNDED and RETURN_REFUSED"))
        if request.reason == ClaimReason.PARTIAL_REFUND_DISPUTED and facts.refunded <= 0:
            problems.append(FieldProblem("reason", "nothing was refunded on this order yet"))
        return problems
    if request.return_id is None:
        return [FieldProblem("return_id", f"required for {request.reason}")]
    ret = facts.returns.get(request.return_id)
    if ret is None:
        return [FieldProblem("return_id", "no return of this order with this id")]
    if ret.refunded:  # whether its refund came late or settled it before any answer (a keep-it offer)
        return [FieldProblem("return_id", "the return was refunded")]
    if request.reason == ClaimReason.RETURN_NOT_REFUNDED:
        overdue = ret.status == ReturnStatus.RECEIVED and ret.refund_due_at is not None and ret.refund_due_at < now
        if not overdue:
            return [FieldProblem("return_id", "the return is not received with its refund deadline passed")]
        return []
    # An in-policy request the seller rejected (for any reason: in policy, it was the buyer's to return),
    # or one still unanswered (the platform authorizes it at the deadline, so not yet auto-authorized).
    refused = ret.in_policy and ret.status in (ReturnStatus.REJECTED, ReturnStatus.REQUESTED)
    if not refused:
        return [FieldProblem("return_id", "the return is not an in-policy request rejected or left unanswered")]
    return []


def claim_problems(facts: OrderFacts, request: ClaimRequest, rules: ClaimRules, now: datetime) -> list[FieldProblem]:
    """Every rule the request breaks, by field (the one-open-claim rule aside: see `file_claim`)."""
    problems = _window_problems(facts, request, rules, now)
    problems += _reason_problems(facts, request, now)
    problems += amount_problems(facts.order.currency, request.amount, facts.refundable, "still refundable on the order")
    return problems


def file_claim(
    facts: OrderFacts,
    request: ClaimRequest,
    claims: Iterable[Claim],
    rules: ClaimRules,
    *,
    claim_id: str,
    actor: Actor,
    now: datetime,
) -> Claim:
    """The new open claim, or ClaimProblem (422 naming the fields) / OpenClaimExists (409)."""
    problems = claim_problems(facts, request, rules, now)
    if problems:
        raise ClaimProblem(problems)
    existing = open_claim(claims)
    if existing is not None:
        raise OpenClaimExists(existing.claim_id)
    order = facts.order
    return Claim(
        claim_id=claim_id,
        order_id=order.order_id,
        marketplace=order.marketplace,
        currency=order.currency,
        buyer=Party.model_validate(order.buyer.model_dump()),
        seller=Party.model_validate(order.seller.model_dump()),
        reason=request.reason,
        return_id=request.return_id,
        amount=request.amount,
        note=request.note,
        status=ClaimStatus.OPEN,
        version=1,
        filed_at=now,
        respond_by=now + rules.response_time,
        timeline=[Step(status=ClaimStatus.OPEN.value, action="file", actor=actor, at=now, note=request.note)],
        created_at=now,
        updated_at=now,
    )
