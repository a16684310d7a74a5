"""Orders, order facts, claim requests and claims built by hand for the disputes tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.disputes.domain import payment_for
from services.disputes.eligibility import ClaimRules, file_claim
from services.disputes.orders import OrderFacts, ReturnFacts
from services.disputes.schemas import ClaimRequest
from shared.dispute_models import Claim, ClaimStatus
from shared.models import Actor, ReturnStatus
from tests.unit.returns.builders import make_order

# The builders' order is placed three days before it is delivered.
DELIVERED = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
ORDERED = DELIVERED - timedelta(days=3)
TOTAL = 3 * 1500 + 4999 + 599  # what the builders' order cost the buyer (lines and shipping)
RULES = ClaimRules()
BUYER = Actor(role="buyer", id="b-1")
SELLER = Actor(role="seller", id="s-1")
AGENT = Actor(role="agent", id="a-1")
NOW = ORDERED + timedelta(days=20)  # inside every reason's window


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def return_facts(status: ReturnStatus = ReturnStatus.RECEIVED, **changes: Any) -> ReturnFacts:
    values: dict[str, Any] = dict(
        return_id="ret_1",
        status=status,
        version=3,
        in_policy=True,
        response_due_at=ORDERED + timedelta(days=6),
        refund_due_at=ORDERED + timedelta(days=10) if status == ReturnStatus.RECEIVED else None,
    )
    return ReturnFacts(**(values | changes))


def facts(*returns: ReturnFacts, refunded: int = 0, **order: Any) -> OrderFacts:
    order = {"order_id": "o-1", "delivered_at": DELIVERED} | order
    return OrderFacts(make_order(**order), refunded, {ret.return_id: ret for ret in returns})


def request(reason: str = "ITEM_NOT_RECEIVED", amount: int = 1500, **changes: Any) -> ClaimRequest:
    body = {"order_id": "o-1", "reason": reason, "amount": usd(amount)} | changes
    return ClaimRequest.model_validate(body)


def open_claim(amount: int = 1500, *, at: datetime = NOW, **changes: Any) -> Claim:
    claim = file_claim(facts(), request(amount=amount), [], RULES, claim_id="clm_1", actor=BUYER, now=at)
    return claim.model_copy(update=changes)


def in_status(status: ClaimStatus) -> Claim:
    """An open claim moved to `status` by hand (for the transition table), with a payment when paying."""
    claim = open_claim()
    update: dict[str, Any] = {"status": status}
    if status in (ClaimStatus.PAYING, ClaimStatus.CLOSED):
        update["payment"] = payment_for(claim, claim.amount)
    return claim.model_copy(update=update)
