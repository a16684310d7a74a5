"""The right email to the right person, once: real broker, real MongoDB-wire server, real SMTP."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from itertools import pairwise
from typing import Any

from services.notifications.rendering import plan
from services.notifications.samples import sample_data
from shared.events import CloudEvent
from tests.integration.notifications.conftest import fresh_event, running

BUYER, SELLER = "buyer@example.com", "seller@example.com"


def event(event_type: str, version: int | None = None, **options: Any) -> CloudEvent:
    data = sample_data(event_type, **options)
    if version is not None:
        data = data.model_copy(update={"version": version})
    subject = getattr(data, "refund_id", None) if event_type.startswith("refund.") else data.return_id
    return fresh_event(event_type, data, service="returns", subject=subject)


def lifecycle() -> list[CloudEvent]:
    """A return the seller ignored: platform-authorized, shipped, received, auto-refunded."""
    return [
        event("return.created", 1),
        event("seller.response_due_soon", 1),
        event("return.authorized", 2, late=True),
        event("return.shipped", 3),
        event("return.received", 4),
        event("refund.issued", automatic=True),
        event("return.refunded"),
    ]


EXPECTED = Counter(
    {
        (BUYER, "buyer/return_requested"): 1,
        (BUYER, "buyer/return_authorized"): 1,
        (BUYER, "buyer/item_received"): 1,
        (BUYER, "buyer/refunded"): 1,
        (SELLER, "seller/new_request"): 1,
        (SELLER, "seller/response_due_soon"): 1,
        (SELLER, "seller/auto_authorized"): 1,
        (SELLER, "seller/return_shipped"): 1,
        (SELLER, "seller/item_received"): 1,
        (SELLER, "seller/auto_refunded"): 1,
    }
)


async def test_a_lifecycle_delivered_twice_sends_each_email_once(service, mailbox, announcements, wait_until, caplog):
    caplog.set_level(logging.INFO)
    events = lifecycle()
    # Every event delivered twice, in lifecycle order: all at once, a reminder handled after the
    # authorization that answered it is rightly dropped as stale (see the stale-reminder test).
    for event in events:
        await service.publish(event, event)
        await wait_until(lambda event=event: service.processed(event.id, times=2))
    await wait_until(
        lambda: len(announcements.of("notification.sent")) >= len(EXPECTED),
        timeout=15,
        message=f"{len(EXPECTED)} notification.sent",
    )

    # There is no inbox: a redelivery after the emails went out (a crash before the ack) is handled
    # again, and finds every email already recorded.
    await service.publish(*events)
    await wait_until(lambda: service.processed(*(e.id for e in events), times=3))

    docs = {doc["_id"]: doc for doc in await service.notifications()}
    received = mailbox.received()
    templates = Counter((str(m["To"]), docs[m["X-Notification-Id"]]["template"]) for m in received)
    assert templates == EXPECTED
    assert len(docs) == len(EXPECTED) and all(doc["status"] == "sent" for doc in docs.values())
    assert len({m["Message-ID"] for m in received}) == len(received)
    for message in received:
        doc = docs[message["X-Notification-Id"]]
        stable_id = f"<{doc['_id']}.0@{service.settings.message_id_domain}>"
        assert message["Message-ID"] == doc["smtp_message_id"] == stable_id
        assert message["Subject"] == doc["subject"]
        assert message["Content-Language"] == doc["locale"]
        plain = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
        assert plain.strip() == doc["text"].strip()
        assert "<html" in message.get_body(("html",)).get_content()
    sent = announcements.of("notification.sent")
    assert len(sent) == len(EXPECTED)
    assert {e.data["notification_id"] for e in sent} == set(docs)
    assert all(e.data["smtp_message_id"] == docs[e.subject]["smtp_message_id"] for e in sent)
    assert not any("@example.com" in e.to_json().decode().replace(service.settings.message_id_domain, "") for e in sent)
    ours = [r for r in caplog.records if r.name.startswith(("services.", "shared.", "audit", "access"))]
    assert any(r.name == "services.notifications.jobs" for r in ours)
    logged = " ".join(f"{r.getMessage()} {vars(r)}" for r in ours)
    assert "example.com" not in logged and "Ada Buyer" not in logged and "Acme Goods" not in logged


async def test_copies_of_events_at_once_on_two_replicas_send_each_email_once(
    service, settings, db, amqp, bus_factory, mailbox, announcements, wait_until
):
    # No inbox: what keeps it one email per (event, recipient, template) under concurrent copies
    # is the unique key of the notification log, whichever replica's insert comes first.
    events = [event("return.created", 1), event("return.received", 4), event("refund.issued", automatic=True)]
    expected = sum(len(plan(e)) for e in events)
    copies = 6
    async with running(settings, db, amqp, bus_factory, delete_queues=False) as replica:
        await asyncio.gather(*(replica.publish(*events) for _ in range(copies)))
        await wait_until(lambda: service.processed(*(e.id for e in events), times=copies), timeout=15)
        await wait_until(lambda: len(announcements.of("notification.sent")) >= expected, timeout=15)
        await asyncio.sleep(0.5)  # anything extra would be on its way by now

    docs = await service.notifications()
    keys = Counter((doc["event_id"], doc["recipient_role"], doc["template"]) for doc in docs)
    assert len(docs) == expected and set(keys.values()) == {1}
    assert Counter(m["X-Notification-Id"] for m in mailbox.received()) == Counter({doc["_id"]: 1 for doc in docs})
    assert sorted(e.subject for e in announcements.of("notification.sent")) == sorted(doc["_id"] for doc in docs)


async def test_a_server_refusing_for_a_while_gets_the_email_once_it_recovers(
    service, mailbox, announcements, wait_until
):
    mailbox.refuse_next = 3  # 451 three times; the fourth attempt goes through
    rejected = event("return.rejected", 5)
    await service.publish(rejected)
    [sent] = await wait_until(lambda: announcements.of("notification.sent"), timeout=10)

    [doc] = await service.notifications(event_id=rejected.id)
    assert [m["To"] for m in mailbox.received()] == [BUYER]
    assert mailbox.attempts == 4
    assert doc["status"] == "sent" and doc["attempts"] == 4 and sent.data["attempts"] == 4
    assert [a["outcome"] for a in doc["attempt_log"]] == ["transient"] * 3 + ["sent"]
    assert [a["code"] for a in doc["attempt_log"]][:3] == [451] * 3
    gaps = [(b["at"] - a["at"]).total_seconds() for a, b in pairwise(doc["attempt_log"])]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.3  # growing delays
    assert not announcements.of("notification.failed")


async def test_a_server_that_is_down_gets_the_email_when_it_comes_up(service, smtp, mailbox, announcements, wait_until):
    smtp.stop()
    closed = event("return.closed", 5)
    await service.publish(closed)
    await wait_until(lambda: _attempted(service, closed.id), message="a refused connection recorded")
    smtp.start()
    await wait_until(lambda: announcements.of("notification.sent"), timeout=10)

    [doc] = await service.notifications(event_id=closed.id)
    assert doc["attempt_log"][0]["outcome"] == "transient" and doc["attempt_log"][-1]["outcome"] == "sent"
    assert [m["To"] for m in mailbox.received()] == [BUYER]


async def _attempted(service, event_id: str) -> bool:
    docs = await service.notifications(event_id=event_id)
    return bool(docs) and docs[0]["attempts"] >= 1


async def test_a_permanently_rejected_address_ends_in_notification_failed(service, mailbox, announcements, wait_until):
    mailbox.reject.add(BUYER)
    expired = event("return.expired", 3)
    await service.publish(expired)
    [failed] = await wait_until(lambda: announcements.of("notification.failed"), timeout=10)

    [doc] = await service.notifications(event_id=expired.id)
    assert doc["status"] == "failed" and doc["attempts"] == 1 and mailbox.attempts == 1
    assert doc["error"].startswith("550 5.1.1") and BUYER not in doc["error"]
    assert failed.subject == doc["_id"] and failed.data["status"] == "failed"
    assert failed.data["error"] == doc["error"] and failed.data["template"] == "buyer/return_expired"
    assert mailbox.received() == [] and not announcements.of("notification.sent")


async def test_retries_run_out_into_notification_failed(service, mailbox, announcements, wait_until):
    mailbox.refuse_next = 100
    failed_refund = event("refund.failed")
    await service.publish(failed_refund)
    [failed] = await wait_until(lambda: announcements.of("notification.failed"), timeout=10)

    attempts = len(service.settings.send_retry_delays_ms) + 1
    assert failed.data["attempts"] == attempts and mailbox.attempts == attempts
    assert failed.data["error"].startswith(f"gave up after {attempts} attempts; last: 451")
    assert mailbox.received() == []


async def test_a_reminder_that_arrives_after_the_answer_is_dropped(service, wait_until):
    authorized, reminder = event("return.authorized", 2), event("seller.response_due_soon", 1)
    await service.publish(authorized)
    await wait_until(lambda: service.processed(authorized.id))
    await service.publish(reminder)
    await wait_until(lambda: service.processed(reminder.id))

    assert [doc["template"] for doc in await service.notifications()] == ["buyer/return_authorized"]
    assert await service.db.return_versions.find_one({"_id": authorized.data["return_id"]}) == {
        "_id": authorized.data["return_id"],
        "version": 2,
    }


async def _templates(service) -> Counter[str]:
    return Counter(doc["template"] for doc in await service.notifications())


async def _deliver(service, wait_until, *events: CloudEvent, times: int = 1) -> None:
    """One at a time, each handled (for the `times`-th time) before the next is published: the
    order is the test's."""
    for each in events:
        await service.publish(each)
        await wait_until(lambda each=each: service.processed(each.id, times=times))


async def test_a_reminder_redelivered_after_the_answer_arrived_first_is_dropped_both_times(service, wait_until):
    authorized, reminder = event("return.authorized", 2), event("seller.response_due_soon", 1)
    await _deliver(service, wait_until, authorized, reminder)
    await _deliver(service, wait_until, reminder, times=2)  # redelivered (a crash before the ack)

    assert await _templates(service) == Counter({"buyer/return_authorized": 1})


async def test_a_reminder_delivered_twice_with_nothing_later_is_sent_once(service, mailbox, wait_until):
    created, reminder = event("return.created", 1), event("seller.response_due_soon", 1)
    await _deliver(service, wait_until, created, reminder)
    await _deliver(service, wait_until, reminder, times=2)

    expected = Counter({"buyer/return_requested": 1, "seller/new_request": 1, "seller/response_due_soon": 1})
    assert await _templates(service) == expected
    await wait_until(lambda: len(mailbox.received()) == 3, message="three emails")
    assert sorted(m["Subject"] for m in mailbox.received()) == sorted(
        doc["subject"] for doc in await service.notifications()
    )


async def test_a_reminder_sent_before_the_answer_is_not_dropped_or_doubled_when_redelivered_after_it(
    service, wait_until
):
    reminder, authorized = event("seller.response_due_soon", 1), event("return.authorized", 2)
    await _deliver(service, wait_until, reminder, authorized)
    await _deliver(service, wait_until, reminder, authorized, times=2)  # both again, the reminder now after the answer

    assert await _templates(service) == Counter({"seller/response_due_soon": 1, "buyer/return_authorized": 1})


async def test_older_events_and_refund_events_do_not_make_a_reminder_stale(service, wait_until):
    # The reminder for version 3 follows version 3 itself; an older event arriving late (version 2)
    # and a refund's event (which carries the refund's version, 7, not the return's) change nothing.
    shipped, late_authorized = event("return.shipped", 3), event("return.authorized", 2)
    refund = event("refund.failed", 7)
    reminder = event("seller.response_due_soon", 3)
    await _deliver(service, wait_until, shipped, late_authorized, refund, reminder)

    assert (await _templates(service))["seller/response_due_soon"] == 1
    # Only the answer (the event that left `requested`) is noted: one write per return, not per event.
    assert await service.db.return_versions.find_one({"_id": reminder.data["return_id"]}) == {
        "_id": reminder.data["return_id"],
        "version": 2,
    }


async def test_announcements_nobody_listens_to_do_not_hold_up_the_outbox(unheard_service, mailbox, wait_until):
    service = unheard_service
    created = event("return.created", 1)
    await service.publish(created)
    await wait_until(lambda: len(mailbox.received()) == 2, message="both emails")
    await wait_until(lambda: _drained(service), message="outbox emptied")


async def _drained(service) -> bool:
    docs = await service.notifications()
    return all(doc["status"] == "sent" and not doc.get("outbox") and not doc.get("outbox_pending") for doc in docs)


async def test_an_event_with_more_emails_than_senders_sends_them_all(
    settings, db, amqp, bus_factory, mailbox, announcements, wait_until
):
    # One sender, two emails: they cannot be claimed together at insert; claimed one by one instead.
    async with running(settings.model_copy(update={"dispatch_workers": 1}), db, amqp, bus_factory) as service:
        created = event("return.created", 1)
        await service.publish(created)
        await wait_until(lambda: len(announcements.of("notification.sent")) == 2, timeout=10, message="both sent")
    assert sorted(str(m["To"]) for m in mailbox.received()) == [BUYER, SELLER]
