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
from services.notifications.subjects import EmailData
from shared.events import CloudEvent
from shared.messaging import Subscription
from shared.models import Return

log = logging.getLogger(__name__)


async def record_emails(dispatcher: Dispatcher, event: CloudEvent, data: EmailData) -> None:
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

# The registered types the table sends nothing for, and why: they are not consumed at all. Every
# registered type is either in the table or here (tests check), so a new type needs a decision.
IGNORED: Mapping[str, str] = {
    "order.delivered": "the upstream order snapshot returns and disputes check against; nothing happened to tell",
    "return.feedback_received": "the buyer's own answer; it is for metrics, no one is emailed",
    "buyer.flagged": "an internal risk signal (it turns off auto-authorization); telling would only help abuse",
    "buyer.unflagged": "an internal risk signal, like buyer.flagged",
    "notification.sent": "this service's own announcement",
    "notification.failed": "this service's own announcement",
    "order.expired": "the order system cancels the order and tells the buyer itself; for the seller it is a "
    "rating figure, shown by metrics",
    "claim.seller_responded": "the seller's own act; the buyer hears the outcome: a refund's own email when it is "
    "paid (refund.issued / return.refunded), an agent's decision by claim.granted / claim.denied",
    "claim.withdrawn": "the buyer's own act; a withdrawn claim is never granted, so the seller's deadline (claim "
    "filed email) simply has no consequence; the seller sees it in the disputes API",
    "feedback.left": "the buyer's own act; the seller reads feedback in the disputes API and metrics",
    "feedback.removed": "an agent's act on feedback; it only changes the seller's metrics",
    "return.replaced": "the end of a replacement both parties already heard of: the buyer when it shipped "
    "(return.replacement_shipped, with tracking), the seller when it received the item (return.received) and "
    "confirmed the shipment itself; nothing is refunded, so there is nothing new to tell",
    "store_credit.debited": "the buyer's own spending at a checkout, which confirms the payment itself; no "
    "seller is involved",
}
