"""The A-to-z claim's state machine (docs/product.md, disputes): pure functions, each one transition.

Each function takes the current `Claim` and answers the next one (version + 1, a timeline step)
or raises `IllegalTransition` (409) / `ClaimProblem` (422 naming the field). No I/O here.

    open --respond(refund)--> paying --refund.issued--> closed (paid)
    open --respond(contest)--> contested --decide(grant)--> paying
                                         --decide(deny)--> denied
    open/contested --withdraw--> withdrawn
    open --respond_by passed--> paying (granted by the platform)
    paying --refund.failed (already_refunded)--> closed (already_refunded)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.disputes.schemas import DecideBody, RespondBody
from shared import rules
from shared.dispute_models import (
    Claim,
    ClaimClosure,
    ClaimDecision,
    ClaimPayment,
    ClaimStatus,
    SellerResponse,
    Step,
)
from shared.models import Actor
from shared.money import Money
from shared.rules import FieldProblem, RulesBroken

S = ClaimStatus
PLATFORM = Actor(role="platform", id="disputes")

# action -> statuses it may start from; anything else is a 409.
ALLOWED: dict[str, frozenset[ClaimStatus]] = {
    "respond": frozenset({S.OPEN}),
    "withdraw": frozenset({S.OPEN, S.CONTESTED}),
    "decide": frozenset({S.CONTESTED}),
    "remind": frozenset({S.OPEN}),
    "grant_late": frozenset({S.OPEN}),
    "close": frozenset({S.PAYING}),
}


class ClaimProblem(RulesBroken):
    """The claim breaks its rules (a 422 naming each field, e.g. `amount.amount`)."""


class IllegalTransition(rules.IllegalTransition):
    noun = "claim"


def _require(claim: Claim, action: str) -> None:
    if claim.status not in ALLOWED[action]:
        raise IllegalTransition(action, claim.status)


def _next(
    claim: Claim, action: str, status: ClaimStatus, actor: Actor, now: datetime, note: str | None = None, **changes: Any
) -> Claim:
    step = Step(status=status.value, action=action, actor=actor, at=now, note=note)
    return claim.model_copy(
        update={
            "status": status,
            "version": claim.version + 1,
            "updated_at": now,
            "timeline": [*claim.timeline, step],
            **changes,
        }
    )


def payment_for(claim: Claim, amount: Money) -> ClaimPayment:
    """The claim's one refund: its id is a function of the claim's, so it is opened at most once."""
    return ClaimPayment(refund_id=f"rf_{claim.claim_id}", amount=amount)


def amount_problems(currency: str, amount: Money | None, most: int, what: str) -> list[FieldProblem]:
    """An amount to pay on a claim: in the order's currency, above zero, at most `most` (`what` says what that is)."""
    if amount is None:
        return [FieldProblem("amount", "required")]
    if amount.currency != currency:
        return [FieldProblem("amount.currency", f"must be the order's currency {currency}")]
    if amount.amount <= 0:
        return [FieldProblem("amount.amount", "must be more than zero")]
    if amount.amount > most:
        return [FieldProblem("amount.amount", f"more than {what} ({most})")]
    return []


def respond(claim: Claim, body: RespondBody, actor: Actor, now: datetime) -> Claim:
    """The seller refunds (full or partial: paid through the refunds service) or contests with evidence,
    until `respond_by`: from then on the claim is the platform's to grant (`grant_late`)."""
    _require(claim, "respond")
    if now >= claim.respond_by:
        raise IllegalTransition("respond", claim.status, "the seller's response deadline has passed")
    if body.kind == "refund":
        problems = amount_problems(claim.currency, body.amount, claim.amount.amount, "the claim asks for")
        if body.evidence is not None:
            problems.append(FieldProblem("evidence", "only with kind `contest`"))
        if problems or body.amount is None:  # amount_problems names a missing amount
            raise ClaimProblem(problems)
        response = SellerResponse(kind="refund", amount=body.amount, note=body.note, at=now)
        return _next(
            claim,
            "refund",
            S.PAYING,
            actor,
            now,
            body.note,
            seller_response=response,
            payment=payment_for(claim, body.amount),
        )
    problems = []
    if body.evidence is None or not body.evidence.model_dump(exclude_none=True):
        problems.append(FieldProblem("evidence", "contesting needs evidence: carrier and tracking, a refund, or text"))
    if body.amount is not None:
        problems.append(FieldProblem("amount", "only with kind `refund`"))
    if problems:
        raise ClaimProblem(problems)
    evidence = body.evidence.model_dump() if body.evidence else None
    response = SellerResponse(kind="contest", evidence=evidence, note=body.note, at=now)
    return _next(claim, "contest", S.CONTESTED, actor, now, body.note, seller_response=response)


def withdraw(claim: Claim, actor: Actor, now: datetime, note: str | None = None) -> Claim:
    _require(claim, "withdraw")
    return _next(claim, "withdraw", S.WITHDRAWN, actor, now, note)


def decide(claim: Claim, body: DecideBody, actor: Actor, now: datetime) -> Claim:
    """An agent decides a contested claim: grant (the amount asked or less) or deny. A grant is paid
    within the order's cap by the refunds service, as a seller's refund or the platform's grant is:
    less when the order has less left, and none when it has nothing (closed `already_refunded`)."""
    _require(claim, "decide")
    if body.outcome == "deny":
        if body.amount is not None:
            raise ClaimProblem([FieldProblem("amount", "only with outcome `grant`")])
        decision = ClaimDecision(outcome="denied", actor=actor, note=body.note, at=now)
        return _next(claim, "deny", S.DENIED, actor, now, body.note, decision=decision)
    amount = body.amount or claim.amount
    problems = amount_problems(claim.currency, amount, claim.amount.amount, "the claim asks for")
    if problems:
        raise ClaimProblem(problems)
    decision = ClaimDecision(outcome="granted", amount=amount, actor=actor, note=body.note, at=now)
    return _next(claim, "grant", S.PAYING, actor, now, body.note, decision=decision, payment=payment_for(claim, amount))


def remind(claim: Claim, now: datetime) -> Claim:
    """`claim.response_due_soon`, once per claim."""
    _require(claim, "remind")
    if claim.reminded:
        raise IllegalTransition("remind", claim.status, "the seller was reminded already")
    return _next(claim, "remind", S.OPEN, PLATFORM, now, reminded=True)


def grant_late(claim: Claim, now: datetime) -> Claim:
    """No answer by `respond_by`: the platform grants the whole amount, funded by the seller."""
    _require(claim, "grant_late")
    if now < claim.respond_by:
        raise IllegalTransition("grant_late", claim.status, "the seller's response deadline has not passed")
    note = "The seller did not respond in time."
    decision = ClaimDecision(
        outcome="granted", amount=claim.amount, automatic=True, funded_by="seller", actor=PLATFORM, note=note, at=now
    )
    return _next(
        claim, "grant", S.PAYING, PLATFORM, now, note, decision=decision, payment=payment_for(claim, claim.amount)
    )


def _paying_with(claim: Claim, refund_id: str) -> ClaimPayment | None:
    """The claim's payment if `refund_id` is its refund and the claim is closed by it now; None when
    that refund closed it already (a redelivery)."""
    payment = claim.payment
    if payment is None or payment.refund_id != refund_id:
        raise IllegalTransition("close", claim.status, f"refund {refund_id} does not pay this claim")
    if claim.status == S.CLOSED:
        return None
    _require(claim, "close")
    return payment


def close_paid(claim: Claim, refund_id: str, paid: Money, issued_at: datetime, now: datetime) -> Claim | None:
    """The claim's refund was issued: closed `paid`. None when it is closed already."""
    payment = _paying_with(claim, refund_id)
    if payment is None:
        return None
    return _next(
        claim,
        "close",
        S.CLOSED,
        PLATFORM,
        now,
        payment=payment.model_copy(update={"paid": paid, "issued_at": issued_at}),
        closure=ClaimClosure(code="paid", at=now),
    )


def close_already_refunded(claim: Claim, refund_id: str, now: datetime) -> Claim | None:
    """The order had nothing left to refund: closed `already_refunded`. None when it is closed already."""
    if _paying_with(claim, refund_id) is None:
        return None
    note = "The order was already refunded in full."
    return _next(claim, "close", S.CLOSED, PLATFORM, now, note, closure=ClaimClosure(code="already_refunded", at=now))
