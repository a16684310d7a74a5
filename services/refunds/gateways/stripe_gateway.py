"""Refunds through Stripe with the official SDK (stripe-mock in tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import stripe
from opentelemetry.trace import SpanKind

from services.refunds.gateways.base import GatewayDeclined, GatewayRefund
from shared import tracing
from shared.stripe_calls import StripeCaller

if TYPE_CHECKING:
    from stripe.params import RefundCreateParams, RefundListParams


class StripeGateway(StripeCaller):
    name = "stripe"

    async def refund(self, request: GatewayRefund) -> str:
        params: RefundCreateParams = {"amount": request.amount.amount, "metadata": _metadata(request)}
        params[_payment_field(request.payment_reference)] = request.payment_reference
        options: stripe.RequestOptions = {"idempotency_key": request.idempotency_key}
        # In the trace of the event that asked for the refund (shared.tracing; a span only when recording).
        with tracing.span("stripe refunds.create", kind=SpanKind.CLIENT, refund_id=request.refund_id):
            created = await self._call(self._client.v1.refunds.create_async(params=params, options=options))
        if created.status in ("failed", "canceled"):
            raise GatewayDeclined(f"stripe refund {created.id} is {created.status}")
        return created.id

    async def find(self, request: GatewayRefund) -> str | None:
        params: RefundListParams = {"limit": 100}
        params[_payment_field(request.payment_reference)] = request.payment_reference
        with tracing.span("stripe refunds.list", kind=SpanKind.CLIENT, refund_id=request.refund_id):
            page = await self._call(self._client.v1.refunds.list_async(params=params))
        for refund in (item.to_dict() for item in page.data):
            metadata = refund.get("metadata") or {}
            if metadata.get("refund_id") == request.refund_id and refund.get("status") not in ("failed", "canceled"):
                return refund["id"]
        return None


def _payment_field(reference: str) -> Literal["charge", "payment_intent"]:
    return "charge" if reference.startswith(("ch_", "py_")) else "payment_intent"


def _metadata(request: GatewayRefund) -> dict[str, str]:
    metadata = {"refund_id": request.refund_id, "order_id": request.order_id}
    if request.return_id:
        metadata["return_id"] = request.return_id
    if request.claim_id:
        metadata["claim_id"] = request.claim_id
    return metadata
