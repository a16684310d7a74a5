"""Refund errors as the API answers them (problem+json); raised by the service layer."""

from __future__ import annotations

from shared.http import Conflict, NotFound, Unprocessable, ValidationFailed, field_problems
from shared.http.domain_errors import OrderNotFound as OrderNotFound  # re-exported: the service's errors in one place
from shared.money import Money


class RefundNotFound(NotFound):
    title, slug = "Refund not found", "refund-not-found"


class ReturnNotRefundable(NotFound):
    title, slug = "No received return to refund", "return-not-refundable"


class InvalidRefund(ValidationFailed):
    title = "Invalid refund"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(**field_problems(problems))


class RefundExceedsPaid(Unprocessable):
    title, slug = "Refund exceeds what the buyer paid", "refund-exceeds-paid"

    def __init__(self, requested: Money, available: int) -> None:
        left = Money(amount=max(available, 0), currency=requested.currency)
        super().__init__(
            f"The refund of {requested.amount} exceeds the {left.amount} {left.currency} "
            "left to refund on this order; nothing was paid.",
            requested=requested.model_dump(),
            available=left.model_dump(),
            errors=[
                {
                    "field": "lines",
                    "location": "body",
                    "reason": f"at most {left.amount} {left.currency} can still be refunded",
                }
            ],
        )


class RefundNotAllowed(Conflict):
    title, slug = "Refund not allowed in its current state", "refund-state-conflict"
