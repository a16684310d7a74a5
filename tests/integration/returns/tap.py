"""A listener on the real broker: an exclusive queue bound to every event type, kept in memory."""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from shared.events import CloudEvent
from tests.integration.returns.factories import eventually


class EventTap:
    def __init__(self, amqp_url: str, exchange: str) -> None:
        self.amqp_url, self.exchange = amqp_url, exchange
        self.events: list[CloudEvent] = []
        self._connection: Any = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.amqp_url)
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="#")
        await queue.consume(self._on_message, no_ack=True)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.events.append(CloudEvent.from_json(message.body))

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def of(self, subject: str, source: str = "/services/returns") -> list[CloudEvent]:
        return [e for e in self.events if e.subject == subject and e.source == source]

    def types(self, subject: str) -> list[str]:
        return [e.type for e in self.of(subject)]

    def for_order(self, order_id: str) -> list[CloudEvent]:
        return [e for e in self.events if e.source == "/services/returns" and e.data.get("order_id") == order_id]

    async def wait_types(self, subject: str, expected: list[str], timeout: float = 10.0) -> list[CloudEvent]:
        """Wait until `subject`'s events are exactly `expected` (in order) and answer them."""
        await eventually(
            lambda: len(self.of(subject)) >= len(expected),
            timeout=timeout,
            what=f"{expected} for {subject} (have {self.types(subject)})",
        )
        assert self.types(subject) == expected, self.types(subject)
        return self.of(subject)
