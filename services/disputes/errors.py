"""Domain errors of claims and feedback as problem+json (the one place they get an HTTP status)."""

from __future__ import annotations

from services.disputes.domain import ClaimProblem, FieldProblem, IllegalTransition
from services.disputes.eligibility import OpenClaimExists
from shared.http import Conflict, Forbidden, NotFound, Unprocessable, field_problems


class ClaimNotFound(NotFound):
    title, slug = "Claim not found", "claim-not-found"


class FeedbackNotFound(NotFound):
    title, slug = "Feedback not found", "feedback-not-found"


class TransitionNotAllowed(Conflict):
    title, slug = "Transition not allowed", "illegal-transition"


class OrderHasOpenClaim(Conflict):
    title, slug = "The order has an open claim", "open-claim-exists"


class FeedbackExists(Conflict):
    title, slug = "The order has feedback already", "feedback-exists"


class ConcurrentChange(Conflict):
    title, slug = "Changed concurrently", "concurrent-change"

    def __init__(
        self, detail: str = "The claim changed while this request was processed; reload it and retry."
    ) -> None:
        super().__init__(detail)


class RuleViolation(Unprocessable):
    title, slug = "Breaks the claim rules", "rule-violation"


class NotYourAction(Forbidden):
    title, slug = "Not allowed for this role", "forbidden"


def rule_violation(problems: list[FieldProblem]) -> RuleViolation:
    return RuleViolation(**field_problems((p.field, p.reason) for p in problems))


def from_domain(exc: Exception) -> Exception:
    if isinstance(exc, IllegalTransition):
        return TransitionNotAllowed(str(exc), status_now=exc.status.value)
    if isinstance(exc, ClaimProblem):
        return rule_violation(exc.problems)
    if isinstance(exc, OpenClaimExists):
        return OrderHasOpenClaim(str(exc), claim_id=exc.claim_id)
    return exc
