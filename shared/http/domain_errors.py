"""The problem+json answers every service gives its domain errors the same way.

A service subclasses what it names differently (`class RuleViolation(domain_errors.RuleViolation)`
with its own title) and maps its domain errors with `from_domain`; slugs and titles are part of
the API contract, so they live here once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from shared.http.problems import Conflict, Forbidden, NotFound, Unprocessable, field_problems
from shared.rules import FieldProblem, IllegalTransition, RulesBroken


class OrderNotFound(NotFound):
    title, slug = "Order not found", "order-not-found"


class TransitionNotAllowed(Conflict):
    title, slug = "Transition not allowed", "illegal-transition"


class ConcurrentChange(Conflict):
    """A compare-and-set lost to another writer; `noun` names the aggregate in the detail."""

    title, slug = "Changed concurrently", "concurrent-change"
    noun: ClassVar[str] = "record"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or f"The {self.noun} changed while this request was processed; reload it and retry.")


class RuleViolation(Unprocessable):
    title, slug = "Breaks the rules", "rule-violation"

    @classmethod
    def of(cls, problems: Iterable[FieldProblem]) -> RuleViolation:
        """The 422 naming each field of `problems`."""
        return cls(**field_problems((p.field, p.reason) for p in problems))


class NotYourAction(Forbidden):
    title = "Not allowed for this role"  # the same kind of error as any Forbidden: its type too


def from_domain(exc: Exception, rule_violation: type[RuleViolation]) -> Exception:
    """The problem a domain error answers as (the error itself if it is no domain error)."""
    if isinstance(exc, IllegalTransition):
        return TransitionNotAllowed(str(exc), status_now=exc.status.value)
    if isinstance(exc, RulesBroken):
        return rule_violation.of(exc.problems)
    return exc
