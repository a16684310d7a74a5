"""What every payment gateway offers the refunds service, and the two ways a call can fail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.models import Party
from shared.money import Money

# Every gateway fails the way Stripe's calls do: try again later (same key), or refused for good.
from shared.stripe_calls import GatewayDeclined as GatewayDeclined
from shared.stripe_calls import GatewayUnavailable as GatewayUnavailable


@dataclass(frozen=True)
class GatewayRefund:
    """One refund as a gateway sees it. `idempotency_key` was stored before the call."""

    refund_id: str
    idempotency_key: str
    payment_reference: str
    amount: Money
    order_id: str
    return_id: str | None = None
    claim_id: str | None = None  # a refund of kind `claim`: the A-to-z claim it pays
    key_round: int = 0  # `idempotency_key` is `domain.gateway_key(refund_id, key_round)`
    # Store credit (gateway `store_credit`, refund destination `store_credit`): whose balance it
    # goes to, and the marketplace's bonus credited on top of `amount`.
    buyer: Party | None = None
    seller_id: str | None = None
    bonus: Money | None = None


class PaymentGateway(Protocol):
    name: str

    async def refund(self, request: GatewayRefund) -> str:
        """Pay the refund; returns the gateway's reference. The same key never pays twice."""
        ...

    async def find(self, request: GatewayRefund) -> str | None:
        """The reference of a refund already made for `request.refund_id` under any of its keys
        (rounds 0..`request.key_round`), if any."""
        ...

    async def close(self) -> None: ...
