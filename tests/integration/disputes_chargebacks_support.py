"""What the chargeback integration tests share: Stripe events signed as Stripe signs them, the upstream
events that teach the disputes service an order, and a capture of the `chargeback.*` it publishes."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import stripe

from shared.bus import EventBus
from shared.events import CloudEvent, new_event
from shared.models import Order, Refund

SECRET = "whsec_chargebacks_integration"
NOW = datetime(2025, 8, 1, 12, 0, tzinfo=UTC)  # a business clock (signatures use the wall clock)


@dataclass
class Captured:
    events: list[CloudEvent] = field(default_factory=list)

    def of_type(self, event_type: str, subject: str | None = None) -> list[CloudEvent]:
        return [e for e in self.events if e.type == event_type and (subject is None or e.subject == subject)]


@asynccontextmanager
async def capture_chargebacks(amqp: aio_pika.abc.AbstractRobustConnection, exchange: str) -> AsyncIterator[Captured]:
    """Every `chargeback.*` published on `exchange` while inside."""
    captured = Captured()
    channel = await amqp.channel()
    target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(target, routing_key="chargeback.*")

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            captured.events.append(CloudEvent.from_json(message.body))

    await queue.consume(on_message)
    try:
        yield captured
    finally:
        await channel.close()


async def announce(publisher: EventBus, orders_exchange: str, order: Order, refunded: int = 0) -> None:
    """`order.delivered` for the order, and `refund.issued` for `refunded` minor units of it."""
    event = new_event("order.delivered", service="orders", subject=order.order_id, data=order, sequence=1, time=NOW)
    await publisher.publish(event, exchange=orders_exchange)
    if refunded:
        refund = refund_of(order, refunded)
        event = new_event(
            "refund.issued", service="refunds", subject=refund.refund_id, data=refund, sequence=1, time=NOW
        )
        await publisher.publish(event)


async def knows(db: Any, order_id: str, refunded: int = 0) -> bool:
    """The service has the order, with `refunded` counted on it."""
    doc = await db["order_facts"].find_one({"_id": order_id})
    return bool(doc and "order" in doc and doc.get("refunded", 0) == refunded)


def refund_of(order: Order, amount: int) -> Refund:
    money = {"amount": amount, "currency": order.currency}
    zero = {"amount": 0, "currency": order.currency}
    return Refund.model_validate(
        {
            "refund_id": f"rf_{uuid.uuid4().hex[:12]}",
            "kind": "direct",
            "order_id": order.order_id,
            "marketplace": order.marketplace,
            "currency": order.currency,
            "buyer": order.buyer.model_dump(mode="json"),
            "seller": order.seller.model_dump(mode="json"),
            "status": "issued",
            "version": 2,
            "amount": money,
            "breakdown": {
                "items": money,
                "restocking_fee": zero,
                "outbound_shipping": zero,
                "return_shipping_concession": zero,
                "other_concession": zero,
                "total": money,
            },
            "actor": {"role": "agent", "id": "a-1"},
            "issued_at": NOW.isoformat(),
            "created_at": NOW.isoformat(),
            "updated_at": NOW.isoformat(),
        }
    )


def stripe_event(event_type: str, dispute: dict[str, Any], event_id: str | None = None) -> bytes:
    """A Stripe webhook body (a snapshot event) carrying `dispute`."""
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": dispute},
        }
    ).encode()


def dispute(payment_intent: str, **changes: Any) -> dict[str, Any]:
    """A new Stripe dispute object on that PaymentIntent (and a charge of its own)."""
    return {
        "id": f"dp_{uuid.uuid4().hex[:16]}",
        "object": "dispute",
        "amount": 2599,
        "currency": "usd",
        "reason": "product_not_received",
        "status": "needs_response",
        "payment_intent": payment_intent,
        "charge": f"ch_{uuid.uuid4().hex[:16]}",
        "evidence_details": {"due_by": int(NOW.timestamp()) + 14 * 86400, "submission_count": 0},
        **changes,
    }


def sign(body: bytes, secret: str = SECRET, at: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send (the SDK's own helper), signed `at` (default: now)."""
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=at or int(time.time()))
