"""What a pure domain rule raises: the field it names, the rules an input breaks, a refused transition.

Every service's state machine and policy raise these (or a subclass naming its aggregate);
`shared.http.domain_errors` is the one place they become problem+json.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar


@dataclass(frozen=True)
class FieldProblem:
    """One rule an input breaks, named by the input field (`lines[0].quantity`)."""

    field: str
    reason: str


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help (the event itself is wrong): parked at once.

    Here, not in shared.bus, so that contract modules can raise it without importing the bus."""


class RulesBroken(Exception):
    """The input breaks one or more rules, each named by its field (a 422)."""

    def __init__(self, problems: Iterable[FieldProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in self.problems))


class IllegalTransition(Exception):
    """The aggregate's status does not allow the action; nothing changes (a 409).

    Subclasses name the aggregate (`noun = "return"`) for the message."""

    noun: ClassVar[str] = "record"

    def __init__(self, action: str, status: Enum, why: str | None = None) -> None:
        super().__init__(why or f"cannot {action} a {self.noun} that is {status}")
        self.action, self.status = action, status
