"""Domain errors of the returns service as problem+json (the one place they get an HTTP status)."""

from __future__ import annotations

from services.returns.domain import IllegalTransition
from services.returns.policy import FieldProblem, PolicyViolation
from shared.http import Conflict, Forbidden, NotFound, Unprocessable, field_problems


class ReturnNotFound(NotFound):
    title, slug = "Return not found", "return-not-found"


class OrderNotFound(NotFound):
    title, slug = "Order not found", "order-not-found"


class TransitionNotAllowed(Conflict):
    title, slug = "Transition not allowed", "illegal-transition"


class ConcurrentChange(Conflict):
    title, slug = "Changed concurrently", "concurrent-change"

    def __init__(
        self, detail: str = "The return changed while this request was processed; reload it and retry."
    ) -> None:
        super().__init__(detail)


class RuleViolation(Unprocessable):
    title, slug = "Breaks the return rules", "rule-violation"


class NotYourAction(Forbidden):
    title, slug = "Not allowed for this role", "forbidden"


def rule_violation(problems: list[FieldProblem]) -> RuleViolation:
    return RuleViolation(**field_problems((p.field, p.reason) for p in problems))


def from_domain(exc: Exception) -> Exception:
    if isinstance(exc, IllegalTransition):
        return TransitionNotAllowed(str(exc), status_now=exc.status.value)
    if isinstance(exc, PolicyViolation):
        return rule_violation(exc.problems)
    return exc
