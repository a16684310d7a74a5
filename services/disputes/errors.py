"""Domain errors of claims and feedback as problem+json (the one place they get an HTTP status)."""

from __future__ import annotations

from services.disputes.eligibility import OpenClaimExists
from shared.http import Conflict, NotFound, domain_errors
from shared.http.domain_errors import NotYourAction as NotYourAction  # re-exported: the service's errors in one place
from shared.http.domain_errors import TransitionNotAllowed as TransitionNotAllowed
from shared.rules import FieldProblem


class ClaimNotFound(NotFound):
    title, slug = "Claim not found", "claim-not-found"


class FeedbackNotFound(NotFound):
    title, slug = "Feedback not found", "feedback-not-found"


class OrderHasOpenClaim(Conflict):
    title, slug = "The order has an open claim", "open-claim-exists"


class FeedbackExists(Conflict):
    title, slug = "The order has feedback already", "feedback-exists"


class ConcurrentChange(domain_errors.ConcurrentChange):
    noun = "claim"


class RuleViolation(domain_errors.RuleViolation):
    title = "Breaks the claim rules"


def rule_violation(problems: list[FieldProblem]) -> domain_errors.RuleViolation:
    return RuleViolation.of(problems)


def from_domain(exc: Exception) -> Exception:
    if isinstance(exc, OpenClaimExists):
        return OrderHasOpenClaim(str(exc), claim_id=exc.claim_id)
    return domain_errors.from_domain(exc, RuleViolation)
