"""What the store-credit integration tests share: the events they capture, a grant, a debit call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import httpx
import pytest

from services.refunds.gateways.base import GatewayRefund
from services.refunds.store_credit.store import ENTRIES
from shared.contract_base import Party
from shared.events import CloudEvent, new_event
from shared.money import Money
from shared.resolution_models import StoreCreditEntry

BUYER = Party(id="b-1", name="Bo Buyer", email="bo@example.com")
SENTINEL = "flush"


@dataclass
class CreditEvents:
    """Every `store_credit.*` event published on the test's exchange, in arrival order."""

    events: list[CloudEvent] = field(default_factory=list)

    def of_type(self, event_type: str) -> list[CloudEvent]:
        return [e for e in self.events if e.type == event_type and e.subject != SENTINEL]


@pytest.fixture
async def credit_events(amqp: aio_pika.abc.AbstractRobustConnection, exchange: str) -> AsyncIterator[CreditEvents]:
    captured = CreditEvents()
    channel = await amqp.channel()
    target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(target, routing_key="store_credit.*")

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            captured.events.append(CloudEvent.from_json(message.body))

    await queue.consume(on_message)
    yield captured
    await channel.close()


async def all_published(harness: Any, captured: CreditEvents) -> None:
    """Wait until the service's store-credit outbox is empty, then until a marker published after
    it arrives: whatever the relay published (duplicates too) reached the capture queue before it."""
    entries = harness.db[ENTRIES]
    await harness.wait_until(
        lambda: none_pending(entries),
        timeout=10,
        message="store-credit events never left the outbox",
    )
    marker = StoreCreditEntry.model_validate(
        {
            "entry_id": f"mark-{len(captured.events)}",
            "kind": "debit",
            "buyer_id": SENTINEL,
            "amount": {"amount": 1, "currency": "USD"},
            "balance": {"amount": 0, "currency": "USD"},
            "actor": {"role": "service", "id": "test"},
            "at": harness.clock.now().isoformat(),
        }
    )
    event = new_event(
        "store_credit.debited", service="test", subject=SENTINEL, data=marker, sequence=0, time=harness.clock.now()
    )
    await harness.publisher.publish(event)
    await harness.wait_until(
        lambda: any(e.id == event.id for e in captured.events), timeout=10, message="marker not delivered"
    )


async def none_pending(entries: Any) -> bool:
    return await entries.find_one({"outbox_pending": True}) is None


def grant_request(refund_id: str, amount: int, *, bonus: int | None = None, currency: str = "USD") -> GatewayRefund:
    return GatewayRefund(
        refund_id=refund_id,
        idempotency_key=refund_id,
        payment_reference="",
        amount=Money(amount=amount, currency=currency),
        order_id="o-1",
        return_id="r-1",
        buyer=BUYER,
        seller_id="s-1",
        bonus=None if bonus is None else Money(amount=bonus, currency=currency),
    )


async def post_debit(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    amount: int,
    *,
    key: str | None,
    buyer_id: str = BUYER.id,
    reference: str = "chk-1",
    currency: str = "USD",
) -> httpx.Response:
    if key is not None:
        headers = {**headers, "Idempotency-Key": key}
    body = {"amount": {"amount": amount, "currency": currency}, "reference": reference}
    return await http.post(f"/v1/store-credit/{buyer_id}/debits", json=body, headers=headers)
