"""What a scenario asserts about a return, as the outside world saw it: events, emails, gateway calls."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.e2e.harness import Email, Seen, Stack, eventually
from tests.e2e.world import Party

SOURCES = {
    "return": "/services/returns",
    "seller": "/services/returns",
    "refund": "/services/refunds",
    "notification": "/services/notifications",
    "buyer": "/services/metrics",
}


def check_envelope(event: Seen) -> None:
    body = event.body
    assert body["specversion"] == "1.0"
    assert body["datacontenttype"] == "application/json"
    assert event.message_id == event.id, "the AMQP message_id is the event id"
    assert event.routing_key == event.type, "routing key = event type"
    assert event.persistent, f"{event.type} was not published persistently"
    source = "/services/refunds" if event.type == "return.refunded" else SOURCES[event.type.split(".")[0]]
    assert body["source"] == source, f"{event.type} from {body['source']}"
    assert body["time"] and body.get("sequence", 0) >= 1


async def expect_events(stack: Stack, return_id: str, expected: list[tuple[str, int]]) -> list[Seen]:
    """The return's events (not notifications), in arrival order, as (type, sequence): exactly these."""

    def current() -> list[tuple[str, int]]:
        return [(e.type, e.sequence) for e in stack.tap.of_return(return_id)]

    def arrived() -> bool:
        assert current() == expected, f"events of {return_id}: {current()} != {expected}"
        return True

    await eventually(arrived, what=f"the events of {return_id}")
    events = stack.tap.of_return(return_id)
    for event in events:
        check_envelope(event)
    assert len({e.id for e in events}) == len(events), "an event id was seen twice"
    return events


def emails_of(stack: Stack, return_id: str) -> list[Email]:
    """Emails about this return: attributed by Message header X-Notification-Id to the
    `notification.sent` events (whose data names the return) seen on the tap."""
    ids = {e.data["notification_id"] for e in stack.tap.notifications_of(return_id) if e.type == "notification.sent"}
    return [mail for mail in stack.mailbox.all() if mail.notification_id in ids]


async def expect_emails(stack: Stack, agent: Party, return_id: str, expected: list[tuple[str, str]]) -> list[Email]:
    """Exactly these (recipient address, subject) emails about the return, each once, and nothing pending."""
    want = sorted(expected)

    def got() -> list[tuple[str, str]]:
        return sorted((mail.recipient, mail.subject) for mail in emails_of(stack, return_id))

    def arrived() -> bool:
        assert got() == want, f"emails of {return_id}:\n  got  {got()}\n  want {want}"
        return True

    await eventually(arrived, what=f"the emails of {return_id}")

    async def all_sent() -> bool:
        records = await agent.notifications(return_id=return_id)
        statuses = Counter(record["status"] for record in records)
        assert statuses == Counter({"sent": len(want)}), f"notification records of {return_id}: {dict(statuses)}"
        return True

    # Quiet now: every notification the service recorded for the return is sent, and no more
    # messages than those reached the SMTP server.
    await eventually(all_sent, what=f"all notifications of {return_id} sent")
    assert got() == want
    mails = emails_of(stack, return_id)
    for mail in mails:
        assert mail.content_types == ("text/plain", "text/html"), mail.content_types
        # Not asserted: Content-Language (services/notifications/mail.py sets it before set_content(),
        # which drops every Content-* header, so no email carries it; see the e2e report).
        assert mail.message_id.startswith(f"<{mail.notification_id}."), (mail.message_id, mail.notification_id)
        assert mail.to == mail.recipient, (mail.to, mail.recipient)
    sent = [e for e in stack.tap.notifications_of(return_id) if e.type == "notification.sent"]
    assert len(sent) == len(want), f"{len(sent)} notification.sent events for {len(want)} emails"
    return mails


async def emails_settled(agent: Party, return_id: str, count: int) -> None:
    """Wait until the return's `count` emails so far are all sent: the moment to move the clock.

    Moving the clock while an email is being sent makes its claim look expired, and the dispatcher
    sends it a second time (its lease runs on the business clock; see the e2e report).
    """

    async def sent() -> bool:
        records = await agent.notifications(return_id=return_id)
        assert len(records) == count and all(r["status"] == "sent" for r in records), (
            f"{return_id}: {[(r['template'], r['status']) for r in records]}"
        )
        return True

    await eventually(sent, what=f"{count} emails of {return_id} sent")


def expect_one_payment(stack: Stack, refund: dict[str, Any], payment_reference: str) -> None:
    """The gateway was asked to pay this refund exactly once, for exactly its amount."""
    calls = stack.stripe.refunds(refund["refund_id"])
    assert len(calls) == 1, f"{len(calls)} gateway calls for {refund['refund_id']}"
    call = calls[0]
    assert call.status == 200
    assert call.idempotency_key == refund["refund_id"]
    assert int(call.params["amount"]) == refund["amount"]["amount"]
    assert call.params["payment_intent"] == payment_reference
    if refund.get("return_id"):
        assert call.params["metadata[return_id]"] == refund["return_id"]


def assert_no_personal_data_in_logs(stack: Stack, *parties: Party) -> None:
    """docs/product.md §8: no buyer address or name in logs."""
    text = stack.logs_text()
    for party in parties:
        assert party.email not in text, f"{party.email} appears in the service logs"
        assert party.name not in text, f"{party.name!r} appears in the service logs"
