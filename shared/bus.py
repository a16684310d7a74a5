"""Event bus over RabbitMQ: confirmed publishing; consuming with ack, retry, park and dedupe.

Topology of one service (`q` = queue_name, the service name unless told otherwise; names, queue
arguments and a failed message's headers are in shared/queues.py):
  q.inbox      quorum queue, bound to each subscribed event type on its exchange
  q.retry.<n>  classic queue per retry delay (x-message-ttl); expired messages flow back to q.inbox
  q.dead       classic queue of parked messages; see shared.deadletters to list and replay them

A failing handler is retried once per delay, then parked. A failure retrying cannot cure (the
event's data fails its pydantic model, see shared.messaging.Subscription, or the handler raises
PermanentError) is parked at once. The `x-attempt` header is read as untrusted input: clamped to
0..len(retry delays).

Handlers MUST be idempotent. The inbox records an event id only after its handler returned, so a
crash between the handler's effect and the inbox insert delivers the event again; the inbox only
spares handlers the common duplicates (publisher retries, redelivery after an ack was lost), at
two commands per consumed event (`find inbox`, `insert inbox`). A service whose handlers are
idempotent on their own, also when two copies run at once on two replicas (a write conditional on
a version or sequence, a unique key), passes `inbox=None` and skips both. Either way, two copies
of one event in flight in the same process run one after the other (`_one_at_a_time`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
)
from aio_pika.exceptions import PublishError
from pydantic import ValidationError
from pymongo.errors import DuplicateKeyError

from shared import ops_metrics, tracing
from shared.acks import AckBatcher, channel_of
from shared.clock import Clock, SystemClock
from shared.events import EXCHANGE, CloudEvent
from shared.mongo import Collection
from shared.periodic import Periodic
from shared.queues import (
    DELIVERY_LIMIT,
    ERROR_TEXT_LIMIT,
    PARKED_FROM,
    QueueNames,
    Unroutable,
    attempts_so_far,
    dead_headers,
    error_text,
    failure_headers,
    is_permanent,
    loggable,
    queue_arguments,
)
from shared.rules import PermanentError as PermanentError
from shared.settings import CommonSettings

log = logging.getLogger(__name__)

Handler = Callable[[CloudEvent], Awaitable[None]]
CONTENT_TYPE = "application/cloudevents+json"


class EventBus:
    def __init__(
        self,
        amqp_url: str,
        service: str,
        *,
        exchange: str = EXCHANGE,
        queue_name: str | None = None,
        retry_delays_ms: Iterable[int] = (1000, 5000, 30000),
        prefetch: int = 32,
        ack_batch_ms: int = 50,  # CommonSettings.ack_batch_ms
        inbox: Collection | None = None,
        clock: Clock | None = None,
        inbox_retention: timedelta = timedelta(days=14),
    ) -> None:
        self.amqp_url, self.service, self.exchange_name = amqp_url, service, exchange
        self.names = QueueNames(queue_name or service, tuple(retry_delays_ms))
        self.prefetch = prefetch
        # Acks go out in runs (shared/acks.py), at most `ack_batch_ms` late; 0: each at once.
        self._acks = AckBatcher(ack_batch_ms / 1000, limit=max(prefetch // 2, 1)) if ack_batch_ms else None
        self.inbox = inbox  # motor collection; None disables dedupe (publish-only buses, tools)
        # No TTL indexes on the stores we run on: a job forgets event ids older than any redelivery.
        self.inbox_retention = inbox_retention
        self._inbox_purge = Periodic(f"inbox-purge:{service}", self.purge_inbox, 3600)
        self.clock = clock or SystemClock()
        self._handlers: dict[str, Handler] = {}
        self._bindings: list[tuple[str, str]] = []  # (exchange, routing key)
        self._retired: list[tuple[str, str]] = []  # (exchange, routing key) bound by older versions
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._queue: AbstractRobustQueue | None = None
        self._consume_channel: AbstractRobustChannel | None = None
        self._consumer_tag: str | None = None
        self._processing: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # Set when close() begins: long operations on the bus (dead-letter replay) stop at the next
        # message boundary instead of holding the shutdown up.
        self.closing = asyncio.Event()

    # ---- connection and publishing ------------------------------------------------------------

    @property
    def connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise RuntimeError("EventBus.connect() first")
        return self._connection

    @property
    def channel(self) -> AbstractRobustChannel:
        """The publishing channel (publisher confirms on)."""
        if self._channel is None:
            raise RuntimeError("EventBus.connect() first")
        return self._channel

    @classmethod
    def from_settings(
        cls, settings: CommonSettings, *, inbox: Collection | None = None, clock: Clock | None = None
    ) -> EventBus:
        """The bus of a service as its settings describe it (exchange, queue names, retries)."""
        return cls(
            settings.amqp_url,
            settings.service_name,
            exchange=settings.exchange,
            queue_name=settings.queue_name,
            retry_delays_ms=settings.retry_delays_ms,
            prefetch=settings.prefetch,
            ack_batch_ms=settings.ack_batch_ms,
            inbox=inbox,
            clock=clock,
            inbox_retention=timedelta(days=settings.inbox_retention_days),
        )

    def is_connected(self) -> bool:
        """Connected to the broker at this instant (readiness). A robust connection is not
        `is_closed` while it reconnects, so look at the transport and the channels themselves."""
        connection = self._connection
        if connection is None or connection.is_closed or not connection.connected.is_set():
            return False
        transport = connection.transport
        if transport is None or not transport.connection.is_opened:
            return False
        channels = [c for c in (self._channel, self._consume_channel) if c is not None]
        return bool(channels) and not any(c.is_closed for c in channels)

    @asynccontextmanager
    async def in_flight(self) -> AsyncIterator[None]:
        """Mark the current task as work close() waits for (up to its drain timeout)."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self.amqp_url, client_properties={"connection_name": f"{self.service}:{self.names.base}"}
        )
        # Confirms make publish() return only once the broker has the message; returns make an
        # unroutable message raise instead of vanishing.
        self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        await self._exchange(self.exchange_name)

    async def _exchange(self, name: str) -> AbstractExchange:
        if name not in self._exchanges:
            self._exchanges[name] = await self.channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        return self._exchanges[name]

    async def publish(self, event: CloudEvent, *, exchange: str | None = None) -> None:
        """Publish persistently and wait for the broker's confirm. Raises Unroutable when no queue
        is bound to the type. Concurrent calls share the channel and overlap their confirms."""
        target = await self._exchange(exchange or self.exchange_name)
        message = aio_pika.Message(
            event.to_json(),
            content_type=CONTENT_TYPE,
            message_id=event.id,
            type=event.type,
            timestamp=event.time,
            app_id=self.service,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=tracing.trace_headers(event) or None,  # the envelope's trace context, for AMQP tooling
        )
        try:
            with tracing.publishing(event):
                await target.publish(message, routing_key=event.type, mandatory=True)
        except PublishError as exc:
            raise Unroutable(event.id, event.type, target.name) from exc

    async def send_to_queue(
        self, message: AbstractIncomingMessage, queue: str, headers: dict[str, Any], *, message_id: str | None = None
    ) -> None:
        """Copy a received message (same body and properties, new headers) into a named queue."""
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            message_id=message_id or message.message_id,
            type=message.type,
            timestamp=message.timestamp,
            app_id=message.app_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await self.channel.default_exchange.publish(copy, routing_key=queue, mandatory=True)
        except PublishError as exc:
            raise Unroutable(copy.message_id or "", message.type or "", f"queue {queue}") from exc

    # ---- consuming ----------------------------------------------------------------------------

    def subscribe(self, event_type: str, handler: Handler, *, exchange: str | None = None) -> None:
        if self._queue is not None:
            raise RuntimeError("subscribe() before start()")
        if event_type in self._handlers:
            raise ValueError(f"{event_type!r} already has a handler")
        self._handlers[event_type] = ops_metrics.timed(event_type, handler)  # handler_seconds{type}
        self._bindings.append((exchange or self.exchange_name, event_type))

    def retire(self, event_type: str, *, exchange: str | None = None) -> None:
        """Unbind `event_type` at start: an older version subscribed to it, this one does not."""
        if self._queue is not None:
            raise RuntimeError("retire() before start()")
        if event_type in self._handlers:
            raise ValueError(f"{event_type!r} is subscribed; it cannot be retired too")
        self._retired.append((exchange or self.exchange_name, event_type))

    async def start(self) -> None:
        channel = self._consume_channel = await self.connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self.prefetch)
        names = self.names
        await channel.declare_queue(names.dead, durable=True, arguments={"x-queue-type": "classic"})
        for attempt, delay in enumerate(names.retry_delays_ms, start=1):
            # A retry queue holds a message for its delay, then dead-letters it back to the main queue.
            retry = queue_arguments("classic", ("x-message-ttl", delay), dead_letter_to=names.main)
            await channel.declare_queue(names.retry(attempt), durable=True, arguments=retry)
        main = queue_arguments("quorum", ("x-delivery-limit", DELIVERY_LIMIT), dead_letter_to=names.dead)
        self._queue = queue = await channel.declare_queue(names.main, durable=True, arguments=main)
        for exchange_name, routing_key in self._bindings:
            exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
            await queue.bind(exchange, routing_key=routing_key)
        for exchange_name, routing_key in self._retired:  # unbinding what is not bound is no error
            exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
            await queue.unbind(exchange, routing_key=routing_key)
        self._consumer_tag = await queue.consume(self._on_message, no_ack=False)
        if self.inbox is not None:
            await self.inbox.create_index("processed_at")
            self._inbox_purge.start()
        ops_metrics.watch(self, ops_metrics.dead_letter_source(self))  # dead_letter_depth, read on scrape
        log.info("consuming", extra={"queue": names.main, "types": sorted(self._handlers)})

    async def purge_inbox(self) -> int:
        """Forget processed event ids older than the retention; returns how many went."""
        if self.inbox is None:
            return 0
        cutoff = self.clock.now() - self.inbox_retention
        result = await self.inbox.delete_many({"processed_at": {"$lt": cutoff}})
        if result.deleted_count:
            log.info("inbox purged", extra={"deleted": result.deleted_count})
        return result.deleted_count

    async def close(self, drain_timeout: float = 10.0) -> None:
        self.closing.set()
        ops_metrics.unwatch(self)
        await self._inbox_purge.stop()
        connected = self._connection is not None and not self._connection.is_closed
        if self._queue is not None and self._consumer_tag is not None and connected:
            # Bounded: while the broker is unreachable a robust channel would wait for it forever.
            with suppress(Exception):
                await asyncio.wait_for(self._queue.cancel(self._consumer_tag), 5)
            self._consumer_tag = None
        if self._tasks:  # let handlers in flight finish and ack before the channel goes away
            await asyncio.wait(self._tasks, timeout=drain_timeout)
        if self._acks is not None:
            with suppress(Exception):
                await self._acks.close()
        if self._connection is not None:
            await self._connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        async with self.in_flight():
            try:
                await self._handle(message)
            except Exception:
                # Forwarding to a retry/dead queue or acking failed (broker trouble): leave it to the
                # broker to deliver again, after a pause so a persistent fault doesn't spin.
                log.exception(
                    "message left unacked", extra={"event_id": message.message_id, "event_type": message.type}
                )
                with suppress(Exception):
                    await asyncio.sleep(1)
                    await message.nack(requeue=True)
                    if self._acks is not None and message.delivery_tag is not None:
                        self._acks.settled(channel_of(message), message.delivery_tag)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            event = CloudEvent.from_json(message.body)
        except ValidationError as exc:
            return await self._park(message, "unparseable", exc, attempts=0)
        handler = self._handlers.get(event.type)
        if handler is None:
            return await self._park(message, f"no handler for type {event.type!r}", None, attempts=0)
        fields = {"event_id": event.id, "event_type": event.type}
        async with self._one_at_a_time(event.id):
            try:
                if await self._seen(event.id):
                    log.info("duplicate skipped", extra=fields)
                else:
                    with tracing.handling(event):
                        await handler(event)
                    await self._remember(event)
            except Exception as exc:  # noqa: BLE001 - any handler failure is retried, then parked
                if is_permanent(exc):  # the same data fails the same way: retries only delay the park
                    attempts = attempts_so_far(message.headers, len(self.names.retry_delays_ms)) + 1
                    return await self._park(message, "invalid event", exc, attempts=attempts)
                return await self._fail(message, exc, fields)
        ops_metrics.consumed(event.type, "ok")
        await self._ack(message)

    async def _ack(self, message: AbstractIncomingMessage) -> None:
        if self._acks is None or message.delivery_tag is None:
            await message.ack()
        else:
            self._acks.ack(channel_of(message), message.delivery_tag)

    @asynccontextmanager
    async def _one_at_a_time(self, event_id: str) -> AsyncIterator[None]:
        # Two copies of one event in the same prefetch window would both miss the inbox; the
        # second waits for the first and then finds it there (without an inbox, it then finds the
        # handler's effect done and its own write a no-op, instead of racing the first).
        while (busy := self._processing.get(event_id)) is not None:
            await busy.wait()
        done = self._processing[event_id] = asyncio.Event()
        try:
            yield
        finally:
            del self._processing[event_id]
            done.set()

    async def _seen(self, event_id: str) -> bool:
        return self.inbox is not None and await self.inbox.find_one({"_id": event_id}, {"_id": 1}) is not None

    async def _remember(self, event: CloudEvent) -> None:
        if self.inbox is None:
            return
        with suppress(DuplicateKeyError):  # a concurrent replica handled the same event
            await self.inbox.insert_one(
                {"_id": event.id, "type": event.type, "time": event.time, "processed_at": self.clock.now()}
            )

    async def _fail(self, message: AbstractIncomingMessage, exc: Exception, fields: dict[str, Any]) -> None:
        # handler runs so far, this one included; at most len(delays) + 1, so this always ends
        attempt = attempts_so_far(message.headers, len(self.names.retry_delays_ms)) + 1
        if attempt > len(self.names.retry_delays_ms):
            return await self._park(message, "handler failed", exc, attempts=attempt)
        headers = failure_headers(message.headers, routing_key=message.routing_key, exchange=message.exchange)
        headers |= {"x-attempt": attempt, "x-last-error": error_text(exc)}
        await self.send_to_queue(message, self.names.retry(attempt), headers)
        log.warning("handler failed, will retry", extra=fields | {"attempt": attempt, "error": loggable(exc)})
        ops_metrics.consumed(message.type, "retried", self._handlers)
        await self._ack(message)

    async def _park(
        self, message: AbstractIncomingMessage, reason: str, exc: Exception | None, *, attempts: int
    ) -> None:
        await self.park_copy(message, reason, exc, attempts=attempts)
        await self._ack(message)

    async def park_copy(
        self,
        message: AbstractIncomingMessage,
        reason: str,
        exc: Exception | None,
        *,
        attempts: int,
        parked_from: str | None = None,
    ) -> None:
        """A copy of `message` in the dead queue with why and when (the caller acks the original).
        `parked_from`: the service's queue a replay returns it to (default: the inbox)."""
        headers = failure_headers(message.headers, routing_key=message.routing_key, exchange=message.exchange)
        error = f"{reason}: {error_text(exc)}" if exc is not None else reason
        headers = dead_headers(headers, error=error[:ERROR_TEXT_LIMIT], attempts=attempts, at=datetime.now(UTC))
        if parked_from is not None:
            headers[PARKED_FROM] = parked_from
        # An unparseable message may lack an id; give it one so it can be replayed by id.
        await self.send_to_queue(
            message, self.names.dead, headers, message_id=message.message_id or f"dead-{uuid.uuid4()}"
        )
        ops_metrics.consumed(message.type, "parked", self._handlers)
        log.error(
            "message parked in dead-letter queue",
            extra={
                "event_id": message.message_id,
                "event_type": message.type,
                "attempts": attempts,
                "error": f"{reason}: {loggable(exc)}" if exc is not None else reason,
                "queue": self.names.dead,
            },
        )
