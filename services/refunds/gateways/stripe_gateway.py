"""Refunds through Stripe with the official SDK (stripe-mock in tests)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Literal, TypeVar

import stripe

from services.refunds.gateways.base import GatewayDeclined, GatewayRefund, GatewayUnavailable

if TYPE_CHECKING:
    from stripe.params import RefundCreateParams, RefundListParams

_RETRYABLE_STATUS = frozenset({409, 429})  # 409: the same key is still being processed
T = TypeVar("T")


class StripeGateway:
    name = "stripe"

    def __init__(self, api_key: str, api_base: str, timeout_s: float) -> None:
        self._http = stripe.HTTPXClient(timeout=timeout_s)
        # The SDK's own retries are off: the refunds service owns the retry budget.
        self._client = stripe.StripeClient(
            api_key, base_addresses={"api": api_base}, max_network_retries=0, http_client=self._http
        )

    async def refund(self, request: GatewayRefund) -> str:
        params: RefundCreateParams = {"amount": request.amount.amount, "metadata": _metadata(request)}
        params[_payment_field(request.payment_reference)] = request.payment_reference
        options: stripe.RequestOptions = {"idempotency_key": request.idempotency_key}
        created = await self._call(self._client.v1.refunds.create_async(params=params, options=options))
        if created.status in ("failed", "canceled"):
            raise GatewayDeclined(f"stripe refund {created.id} is {created.status}")
        return created.id

    async def find(self, request: GatewayRefund) -> str | None:
        params: RefundListParams = {"limit": 100}
        params[_payment_field(request.payment_reference)] = request.payment_reference
        page = await self._call(self._client.v1.refunds.list_async(params=params))
        for refund in (item.to_dict() for item in page.data):
            metadata = refund.get("metadata") or {}
            if metadata.get("refund_id") == request.refund_id and refund.get("status") not in ("failed", "canceled"):
                return refund["id"]
        return None

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except stripe.APIConnectionError as exc:
            raise GatewayUnavailable(f"stripe: connection failed ({type(exc).__name__})") from exc
        except stripe.StripeError as exc:
            status = exc.http_status
            if status is None or status >= 500 or status in _RETRYABLE_STATUS:
                raise GatewayUnavailable(f"stripe: HTTP {status}") from exc
            raise GatewayDeclined(f"stripe: HTTP {status} {exc.code or ''}".strip()) from exc

    async def close(self) -> None:
        await self._http.close_async()


def _payment_field(reference: str) -> Literal["charge", "payment_intent"]:
    return "charge" if reference.startswith(("ch_", "py_")) else "payment_intent"


def _metadata(request: GatewayRefund) -> dict[str, str]:
    metadata = {"refund_id": request.refund_id, "order_id": request.order_id}
    if request.return_id:
        metadata["return_id"] = request.return_id
    if request.claim_id:
        metadata["claim_id"] = request.claim_id
    return metadata
