"""The webhooks queue `<prefix>notifications.webhooks`: bound only to the types endpoints subscribe to.

No endpoint for a type = no binding = the event never reaches this service for webhooks (the email
path has its own queue and is untouched). Bindings follow the store, never a process's memory: the
queue is shared by every replica, so a binding this process made may have been removed by another.
Every change of the bindings holds a lock all replicas share (mutex.py, on the broker): a
registration or change binds its types after its write; a deletion, change or reconcile reads the
store and unbinds what no endpoint wants, all under the lock, so it never unbinds a type that an
endpoint acknowledged before or during it wants (that endpoint's bind waits for the lock, or was
stored before the read). A reconcile at start-up and every WEBHOOKS_RECONCILE_S does the same for
every known type (and repairs what a replica that died between its write and its binding left).

The consumer records one delivery per subscribed endpoint (a unique `_id`, so a redelivered event
adds nothing) and hands the new ones to the delivery job; then it acks. An unparseable message is
parked in the service's dead-letter queue (rejected: the broker dead-letters it), never dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from contextlib import suppress
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractRobustChannel, AbstractRobustQueue
from pydantic import ValidationError

from services.notifications.webhooks.delivery import DeliveryWorker
from services.notifications.webhooks.mutex import BrokerMutex
from services.notifications.webhooks.store import WebhookStore, new_delivery
from shared.bus import EventBus
from shared.clock import Clock
from shared.events import EVENT_TYPES, CloudEvent, registered
from shared.periodic import Periodic, backoff_seconds
from shared.queues import DELIVERY_LIMIT, header_int, queue_arguments

log = logging.getLogger(__name__)


def queue_name(base: str) -> str:
    """`<prefix>notifications.webhooks` for the service queue base `<prefix>notifications` (also AsyncAPI's)."""
    return f"{base}.webhooks"


class WebhookQueue:
    def __init__(
        self,
        bus: EventBus,
        store: WebhookStore,
        worker: DeliveryWorker,
        clock: Clock,
        *,
        exchanges: Mapping[str, str],
        reconcile_s: float,
        prefetch: int = 32,
    ) -> None:
        self.bus, self.store, self.worker, self.clock = bus, store, worker, clock
        self.name = queue_name(bus.names.base)
        self.exchanges, self.prefetch = dict(exchanges), prefetch
        self._declared: dict[str, AbstractExchange] = {}
        self._lock = asyncio.Lock()  # one change of the bindings at a time in this process
        self._mutex = BrokerMutex(lambda: bus.connection, f"{self.name}.bindings-lock")  # ... and across replicas
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractRobustQueue | None = None
        self._tag: str | None = None
        self._reconcile = Periodic("webhooks-reconcile", self.reconcile, reconcile_s, max_backoff_s=300)

    async def start(self) -> None:
        channel = self._channel = await self.bus.connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self.prefetch)
        # A message that keeps killing its consumer is parked with the service's other dead letters.
        arguments = queue_arguments("quorum", ("x-delivery-limit", DELIVERY_LIMIT), dead_letter_to=self.bus.names.dead)
        self._queue = await channel.declare_queue(self.name, durable=True, arguments=arguments)
        await self.reconcile()
        self._tag = await self._queue.consume(self._on_message, no_ack=False)
        self._reconcile.start()

    async def stop(self) -> None:
        await self._reconcile.stop()
        if self._queue is not None and self._tag is not None:
            with suppress(Exception):
                await asyncio.wait_for(self._queue.cancel(self._tag), 5)
        if self._channel is not None:
            with suppress(Exception):
                await self._channel.close()

    def _started(self) -> tuple[AbstractRobustChannel, AbstractRobustQueue]:
        if self._channel is None or self._queue is None:
            raise RuntimeError("WebhookQueue.start() first")
        return self._channel, self._queue

    async def _exchange(self, event_type: str) -> AbstractExchange:
        """The (declared) exchange `event_type` is published on, by this deployment's name for it."""
        channel, _ = self._started()
        contract = registered(event_type).exchange
        name = self.exchanges.get(contract, contract)
        if name not in self._declared:
            self._declared[name] = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        return self._declared[name]

    async def bind(self, event_types: Iterable[str]) -> None:
        """Bind `event_types` (after the registration or change that wants them is stored). Always
        asks the broker: another replica may have unbound a type this process bound before."""
        async with self._lock, self._mutex.held():
            await self._bind(set(event_types))

    async def release(self, event_types: Iterable[str]) -> None:
        """Unbind those of `event_types` no stored endpoint subscribes to (after a deletion or change)."""
        async with self._lock, self._mutex.held():
            await self._converge(set(event_types))

    async def reconcile(self) -> set[str]:
        """Bindings = the types stored endpoints subscribe to, for every known type; returns them."""
        async with self._lock, self._mutex.held():
            wanted = await self.store.subscribed_types()
            await self._bind(wanted)
            return await self._converge(set(EVENT_TYPES), wanted)

    async def _converge(self, candidates: set[str], wanted: set[str] | None = None) -> set[str]:
        """Unbind the `candidates` the store does not want, then bind back any it wants after all (only
        if the lock was lost to a reconnect can a registration's bind have slipped in); returns them."""
        if wanted is None:
            wanted = await self.store.subscribed_types()
        extra = candidates - wanted
        if not extra:
            return wanted
        await self._unbind(extra)
        now_wanted = await self.store.subscribed_types()
        await self._bind(extra & now_wanted)
        return now_wanted

    async def _bind(self, types: set[str]) -> None:
        _, queue = self._started()
        for event_type in sorted(types):
            exchange = await self._exchange(event_type)
            await queue.bind(exchange, routing_key=event_type)  # already bound: a no-op

    async def _unbind(self, types: set[str]) -> None:
        _, queue = self._started()
        for event_type in sorted(types):
            exchange = await self._exchange(event_type)
            await queue.unbind(exchange, routing_key=event_type)  # absent binding: a no-op

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            await self._record(message)
            await message.ack()
        except ValidationError as exc:
            # Never dropped: a copy in the service's dead queue with the reason, naming this queue so a
            # replay returns it here (shared/deadletters.py); then the original is acked.
            try:
                await self.bus.park_copy(message, "unparseable", exc, attempts=1, parked_from=self.name)
            except Exception:
                log.exception("parking failed", extra={"event_id": message.message_id})
                with suppress(Exception):  # the channel is gone: the broker delivers it again
                    await message.reject(requeue=False)
                return
            with suppress(Exception):  # unacked: delivered again, and parked again (a duplicate copy)
                await message.ack()
        except Exception:  # the store or broker is away: the broker delivers it again
            log.exception("webhook event left unacked", extra={"event_id": message.message_id})
            # A growing pause before handing it back: each return counts towards the queue's delivery
            # limit, and a store outage of minutes must not park events (2 s, 4 s, ... 60 s: ~15 min).
            returned = header_int(message.headers, "x-delivery-count")
            with suppress(Exception):
                await asyncio.sleep(backoff_seconds(returned + 1, base=2.0, cap=60.0))
                await message.nack(requeue=True)

    async def _record(self, message: AbstractIncomingMessage) -> None:
        event = CloudEvent.from_json(message.body)  # ValidationError: parked (_on_message)
        endpoints = await self.store.subscribed(event.type)
        if not endpoints:
            return
        now = self.clock.now()
        payload = message.body.decode()
        docs = [new_delivery(e, event.id, event.type, event.time, payload, now) for e in endpoints]
        new: list[dict[str, Any]] = await self.store.record(docs)
        self.worker.wake(doc["_id"] for doc in new if doc["status"] == "pending")
        log.info("webhook deliveries recorded", extra={"event_id": event.id, "event_type": event.type, "new": len(new)})
