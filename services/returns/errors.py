"""Domain errors of the returns service as problem+json (the one place they get an HTTP status)."""

from __future__ import annotations

from shared.http import NotFound, domain_errors
from shared.http.domain_errors import NotYourAction as NotYourAction  # re-exported: the service's errors in one place
from shared.http.domain_errors import OrderNotFound as OrderNotFound
from shared.http.domain_errors import TransitionNotAllowed as TransitionNotAllowed
from shared.rules import FieldProblem


class ReturnNotFound(NotFound):
    title, slug = "Return not found", "return-not-found"


class ConcurrentChange(domain_errors.ConcurrentChange):
    noun = "return"


class RuleViolation(domain_errors.RuleViolation):
    title = "Breaks the return rules"


def rule_violation(problems: list[FieldProblem]) -> domain_errors.RuleViolation:
    return RuleViolation.of(problems)


def from_domain(exc: Exception) -> Exception:
    return domain_errors.from_domain(exc, RuleViolation)
