"""Event -> notifications owed. One handler serves every subscribed type: the table decides.

Idempotent: each email is a unique (event, recipient, template) record, so a redelivered event
finds its records already there and adds nothing.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.notifications.decisions import STALE_WHEN_SUPERSEDED, SUBSCRIBED_TYPES
from services.notifications.domain import new_notification
from services.notifications.jobs import Dispatcher
from services.notifications.rendering import plan
from services.notifications.store import NotificationStore
from shared.clock import Clock
from shared.events import CloudEvent
from shared.models import Return

log = logging.getLogger(__name__)


@dataclass
class NotificationHandlers:
    store: NotificationStore
    dispatcher: Dispatcher
    clock: Clock

    async def on_event(self, event: CloudEvent) -> None:
        planned = plan(event)
        if not planned:
            return
        data = event.typed()
        if event.type in STALE_WHEN_SUPERSEDED and isinstance(data, Return) \
                and await self.store.superseded(data.return_id, data.version):
            log.info("stale reminder dropped", extra={"event_id": event.id, "event_type": event.type,
                                                      "return_id": data.return_id})
            return
        now = self.clock.now()
        fresh = []
        for email in planned:
            doc = new_notification(event, data, email, now)
            if await self.store.record(doc):
                fresh.append(doc["_id"])
        recorded = len(fresh)
        if recorded:
            self.dispatcher.wake(fresh)
        log.info("notifications recorded", extra={
            "event_id": event.id, "event_type": event.type, "recorded": recorded,
            "already_recorded": len(planned) - recorded,
            "templates": [email.template for email in planned]})

    def subscriptions(self) -> list[tuple[str, Callable[[CloudEvent], Awaitable[None]]]]:
        """What the bus binds at start-up: every type the decision table can send for."""
        return [(event_type, self.on_event) for event_type in SUBSCRIBED_TYPES]
