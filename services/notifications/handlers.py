"""Event -> notifications owed. One handler serves every subscribed type: the table decides.

It gets the Dispatcher (the store of emails, the clock, and the sender to wake), the envelope and
the event's validated data (shared.messaging). Idempotent: each email is a unique (event,
recipient, template) record, so a redelivered event finds its records already there and adds
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from services.notifications.decisions import LEAVES_REQUESTED, STALE_WHEN_SUPERSEDED, SUBSCRIBED_TYPES
from services.notifications.domain import new_notification
from services.notifications.jobs import Dispatcher
from services.notifications.rendering import plan
from shared.events import CloudEvent
from shared.messaging import Subscription
from shared.models import Refund, Return

log = logging.getLogger(__name__)


async def record_emails(dispatcher: Dispatcher, event: CloudEvent, data: Return | Refund) -> None:
    planned = plan(event, data)
    if isinstance(data, Return) and planned:
        if event.type in STALE_WHEN_SUPERSEDED and await dispatcher.store.superseded(data.return_id, data.version):
            log.info(
                "stale reminder dropped",
                extra={"event_id": event.id, "event_type": event.type, "return_id": data.return_id},
            )
            return
        if event.type in LEAVES_REQUESTED:
            # Before the emails: once any of them exists, a reminder for an older version is stale.
            # A crash in between leaves the version noted and the event redelivered, which records
            # them. Only the answer is noted: a reminder matters only while the return is requested.
            await dispatcher.store.note_version(data.return_id, data.version)
    now = dispatcher.clock.now()
    recorded = await dispatcher.record([new_notification(event, data, email, now) for email in planned])
    log.info(
        "notifications recorded",
        extra={
            "event_id": event.id,
            "event_type": event.type,
            "recorded": recorded,
            "already_recorded": len(planned) - recorded,
            "templates": [email.template for email in planned],
        },
    )


# Every type the decision table can send for.
SUBSCRIPTIONS: list[Subscription[Dispatcher, Any]] = [
    Subscription(event_type, record_emails) for event_type in SUBSCRIBED_TYPES
]

# Return and refund event types the table sends nothing for, and why: they are not consumed at all.
# A registered type carrying a Return or Refund is either in the table or here (tests check).
IGNORED: Mapping[str, str] = {
    "return.feedback_received": "the buyer's own answer; it is for metrics, no one is emailed",
}
