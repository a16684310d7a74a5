"""Claim and chargeback emails through the real broker, MongoDB-wire server and SMTP server: each
recipient hears once per event, and a chargeback with no seller reaches no one, nor the seller's own
evidence."""

from __future__ import annotations

import logging
from collections import Counter

from services.notifications.samples import sample_event  # a disputes event with a fresh id

BUYER, SELLER = "buyer@example.com", "seller@example.com"


async def test_a_claim_filed_emails_the_buyer_and_the_seller_once_each_in_their_language(
    service, mailbox, announcements, wait_until, caplog
):
    caplog.set_level(logging.INFO)
    filed = sample_event("claim.filed", locale="zh-CN", seller_locale="en")
    await service.publish(filed, filed)  # delivered twice at once
    await wait_until(lambda: service.processed(filed.id, times=2))
    await wait_until(lambda: len(announcements.of("notification.sent")) >= 2, timeout=10, message="2 sent")

    # Redelivered after the emails went out (a crash before the ack): found recorded, nothing added.
    await service.publish(filed)
    await wait_until(lambda: service.processed(filed.id, times=3))

    docs = {doc["_id"]: doc for doc in await service.notifications()}
    received = mailbox.received()
    sent = Counter((str(m["To"]), docs[m["X-Notification-Id"]]["template"], m["Content-Language"]) for m in received)
    assert sent == Counter({(BUYER, "buyer/claim_received", "zh-CN"): 1, (SELLER, "seller/claim_filed", "en"): 1})
    assert len(docs) == 2 and all(doc["status"] == "sent" for doc in docs.values())
    assert {doc["claim_id"] for doc in docs.values()} == {"clm_sample1"}
    assert {doc["order_id"] for doc in docs.values()} == {"ord-1001"}
    for message in received:
        doc = docs[message["X-Notification-Id"]]
        assert message["Subject"] == doc["subject"]
        assert message.get_body(("plain",)).get_content().replace("\r\n", "\n").strip() == doc["text"].strip()
        assert "clm_sample1" in message.get_body(("html",)).get_content()
    assert len(announcements.of("notification.sent")) == 2
    assert not any("@example.com" in e.to_json().decode() for e in announcements.of("notification.sent"))
    ours = [r for r in caplog.records if r.name.startswith(("services.", "shared.", "audit", "access"))]
    logged = " ".join(f"{r.getMessage()} {vars(r)}" for r in ours)
    assert "example.com" not in logged and "Ada Buyer" not in logged and "Acme Goods" not in logged


async def test_a_chargeback_without_a_seller_emails_no_one(service, mailbox, announcements, wait_until):
    orphan = sample_event("chargeback.opened", no_seller=True)
    await service.publish(orphan)
    await wait_until(lambda: service.processed(orphan.id))
    # A chargeback with a seller, handled after it: by the time its email is out, the orphan's
    # would have been recorded and sent too.
    known = sample_event("chargeback.opened")
    await service.publish(known)
    await wait_until(lambda: announcements.of("notification.sent"), timeout=10, message="the known one's email")

    assert await service.notifications(event_id=orphan.id) == []
    [doc] = await service.notifications()
    assert doc["event_id"] == known.id and doc["template"] == "seller/chargeback_opened"
    assert doc["chargeback_id"] == "cbk_sample1" and doc["return_id"] is None
    assert [str(m["To"]) for m in mailbox.received()] == [SELLER]


async def test_the_seller_hears_of_the_platforms_answer_not_of_their_own_evidence(
    service, mailbox, announcements, wait_until
):
    own = sample_event("chargeback.evidence_submitted")
    answered = sample_event("chargeback.evidence_submitted", automatic=True)
    await service.publish(own)
    await wait_until(lambda: service.processed(own.id))
    await service.publish(answered, answered)
    await wait_until(lambda: service.processed(answered.id, times=2))
    await wait_until(lambda: announcements.of("notification.sent"), timeout=10, message="the answer's email")

    [doc] = await service.notifications()
    assert doc["event_id"] == answered.id and doc["template"] == "seller/chargeback_answered"
    assert [str(m["To"]) for m in mailbox.received()] == [SELLER]
