"""A service's messaging: what it subscribes to, and one start/stop order for bus, relay and jobs.

Each service lists the events it consumes in services/<name>/handlers.py, as plain data read at
start-up (and by tools/contracts.py for the AsyncAPI document):

    SUBSCRIPTIONS: list[Subscription[Lifecycle, Any]] = [
        Subscription("return.refunded", return_refunded),
        Subscription("buyer.flagged", buyer_flag_changed),
    ]

A handler is `async def handler(context, event, data) -> None`: `context` is what the service's
wiring hands over (its use-case object), `event` the CloudEvent envelope (id, subject, sequence,
time) and `data` the event's `data`, already validated against the registry's model for its type
(shared.events.EVENT_TYPES), or against a stricter subclass named with `model=`. Data that fails
the model never reaches the handler: the ValidationError parks the message at once (shared.bus).
The exchange is the registry's; a type missing from the registry fails when the list is built.

`Messaging` owns the service's EventBus and OutboxRelay and runs them with its jobs:

    messaging = Messaging.from_settings(settings, inbox=None, outboxes=[store.returns])
    lifecycle = Lifecycle(store, rules, clock, on_commit=messaging.relay.wake)  # wake(id, entries=outbox)
    async with messaging.running(SUBSCRIPTIONS, lifecycle, jobs=[DeadlineJob(lifecycle, ...)]):
        yield

It starts connect -> bind -> consume -> relay -> jobs and stops in reverse: the jobs, the relay,
then the consumer (handlers in flight finish and ack) and the connection.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from pydantic import BaseModel

from shared.bus import EventBus, Handler
from shared.clock import Clock
from shared.events import EXCHANGE, ORDERS_EXCHANGE, CloudEvent, registered
from shared.outbox import OutboxRelay
from shared.queues import Unroutable
from shared.settings import CommonSettings

log = logging.getLogger(__name__)

C = TypeVar("C")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Subscription(Generic[C, M]):
    """On `event_type`, call `handler(context, event, data)` with `data` validated as `model`
    (default: the registry's data model of the type)."""

    event_type: str
    handler: Callable[[C, CloudEvent, M], Awaitable[None]]
    model: type[M] | None = None

    def __post_init__(self) -> None:
        data = registered(self.event_type).data  # UnknownEventType: not in shared.events.EVENT_TYPES
        if self.model is not None and not issubclass(self.model, data):
            raise TypeError(f"{self.event_type}: {self.model.__name__} does not refine its data model {data.__name__}")

    @property
    def exchange(self) -> str:
        """The exchange the type is published on, by its contract name (returns.events, orders.events)."""
        return registered(self.event_type).exchange

    @property
    def data_model(self) -> type[M]:
        return self.model or cast("type[M]", registered(self.event_type).data)

    def bind(self, context: C) -> Handler:
        """The bus's handler for this subscription: validate `data`, then call the handler."""
        model, handler = self.data_model, self.handler

        async def deliver(event: CloudEvent) -> None:
            await handler(context, event, model.model_validate(event.data))

        return deliver


class Job(Protocol):
    """A background loop of the service (deadlines, sending, reviews). `start` may be sync or async."""

    def start(self) -> Awaitable[None] | None: ...

    def stop(self) -> Awaitable[None]: ...


class Announcer:
    """The bus as a relay of announcements sees it: an event no queue is bound to counts as published.

    With no one subscribed there is no one to tell, and a relay retrying an unroutable event forever
    would keep its document pending and the logs noisy.
    """

    def __init__(self, bus: EventBus) -> None:
        self.bus, self.service = bus, bus.service

    async def publish(self, event: CloudEvent, *, exchange: str | None = None) -> None:
        try:
            await self.bus.publish(event, exchange=exchange)
        except Unroutable:
            log.debug("no subscriber for announcement", extra={"event_id": event.id, "event_type": event.type})


class Messaging:
    def __init__(self, bus: EventBus, relay: OutboxRelay, exchanges: Mapping[str, str] | None = None) -> None:
        self.bus, self.relay = bus, relay
        # contract exchange name -> the name this deployment uses (settings may rename both)
        self.exchanges = dict(exchanges or {})

    @classmethod
    def from_settings(
        cls,
        settings: CommonSettings,
        *,
        inbox: Any | None,
        outboxes: Sequence[Any],
        clock: Clock | None = None,
        announcements: bool = False,
    ) -> Messaging:
        """The bus the settings describe (deduplicating on the `inbox` collection) and a relay of
        the `outboxes` collections. `announcements`: events no one is bound to count as published.

        `inbox=None` is the documented choice of a service whose handlers are idempotent on their
        own, under a duplicate and under two copies handled at once (a conditional write, a unique
        key): it saves a `find` and an `insert` per consumed event. See shared.bus and
        docs/architecture.md ("Inbox or not")."""
        bus = EventBus.from_settings(settings, inbox=inbox, clock=clock)
        relay = OutboxRelay.from_settings(Announcer(bus) if announcements else bus, outboxes, settings)
        return cls(bus, relay, {EXCHANGE: settings.exchange, ORDERS_EXCHANGE: settings.orders_exchange})

    def subscribe(self, subscriptions: Iterable[Subscription[C, Any]], context: C) -> None:
        for subscription in subscriptions:
            exchange = self.exchanges.get(subscription.exchange, subscription.exchange)
            self.bus.subscribe(subscription.event_type, subscription.bind(context), exchange=exchange)

    def retire(self, event_types: Iterable[str]) -> None:
        """Types the service consumed once and no longer does: their bindings are removed at start,
        so a queue declared by an older version stops receiving them (instead of parking each one)."""
        for event_type in event_types:
            contract = registered(event_type).exchange
            self.bus.retire(event_type, exchange=self.exchanges.get(contract, contract))

    @asynccontextmanager
    async def running(
        self,
        subscriptions: Iterable[Subscription[C, Any]],
        context: C,
        *,
        jobs: Sequence[Job] = (),
        retired: Iterable[str] = (),
    ) -> AsyncIterator[None]:
        """Connect, bind and consume `subscriptions` (handlers get `context`), unbind the `retired`
        types, relay the outboxes, run `jobs`; on leaving (or a failed start) stop what was
        started, in reverse."""
        async with AsyncExitStack() as stack:
            stack.push_async_callback(self.bus.close)  # cancels the consumer, drains, disconnects
            await self.bus.connect()
            self.subscribe(subscriptions, context)
            self.retire(retired)
            await self.bus.start()  # declares the queues, binds each type, consumes
            stack.push_async_callback(self.relay.stop)
            await self.relay.start()
            for job in jobs:
                stack.push_async_callback(job.stop)
                started = job.start()
                if started is not None:
                    await started
            yield
