"""Keep-it offer and store credit emails through the real broker, MongoDB-wire server and SMTP server
(issue 15): the buyer hears of an offer and of a store credit grant once each, redelivered or not,
and no log names them."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from services.notifications.samples import sample_event  # a resolution event with a fresh id
from shared.queues import Unroutable

BUYER, SELLER = "buyer@example.com", "seller@example.com"


async def test_an_offer_and_a_store_credit_grant_email_the_buyer_once_each(
    service, mailbox, announcements, wait_until, caplog
):
    caplog.set_level(logging.INFO)
    offer = sample_event("return.offer_made", locale="zh-CN", timezone="Asia/Shanghai")
    granted = sample_event("store_credit.granted")
    await service.publish(offer, granted, offer, granted)  # each delivered twice at once
    await wait_until(lambda: service.processed(offer.id, granted.id, times=2))
    await wait_until(lambda: len(announcements.of("notification.sent")) >= 2, timeout=10, message="2 sent")

    # Redelivered after the emails went out (a crash before the ack): found recorded, nothing added.
    await service.publish(offer, granted)
    await wait_until(lambda: service.processed(offer.id, granted.id, times=3))

    docs = {doc["_id"]: doc for doc in await service.notifications()}
    received = mailbox.received()
    sent = Counter(
        (str(m["To"]), docs[m["X-Notification-Id"]]["event_id"], docs[m["X-Notification-Id"]]["template"])
        for m in received
    )
    assert sent == Counter(
        {(BUYER, offer.id, "buyer/offer_made"): 1, (BUYER, granted.id, "buyer/store_credit_granted"): 1}
    )
    assert all(doc["status"] == "sent" and doc["recipient_id"] == "b-1" for doc in docs.values())
    by_event = {doc["event_id"]: doc for doc in docs.values()}
    assert by_event[offer.id]["return_id"] == "ret_sample1" and by_event[offer.id]["locale"] == "zh-CN"
    assert (by_event[granted.id]["refund_id"], by_event[granted.id]["order_id"]) == ("rf_sample1", "ord-1001")
    for message in received:
        doc = docs[message["X-Notification-Id"]]
        assert message["Subject"] == doc["subject"]
        text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
        assert text.strip() == doc["text"].strip()
        html = message.get_body(("html",)).get_content()
        if doc["event_id"] == offer.id:  # the answer-by time in the buyer's own zone
            assert "US$15.00" in text and "2025年3月7日星期五 23:00 中国标准时间" in text and "ofr_sample1" in html
        else:
            assert "$58.26" in text and "$2.77" in text and "$78.26" in html
    assert len(announcements.of("notification.sent")) == 2
    assert not any("@example.com" in e.to_json().decode() for e in announcements.of("notification.sent"))
    ours = [r for r in caplog.records if r.name.startswith(("services.", "shared.", "audit", "access"))]
    logged = " ".join(f"{r.getMessage()} {vars(r)}" for r in ours)
    assert "example.com" not in logged and "Ada Buyer" not in logged and "Acme Goods" not in logged


async def test_a_replaced_return_and_a_store_credit_debit_are_not_consumed(service, mailbox, announcements, wait_until):
    # IGNORED types are not bound at all: with only this service on the exchange, the broker
    # returns them (mandatory publish) instead of queueing them for no one.
    for event_type in ("return.replaced", "store_credit.debited"):
        with pytest.raises(Unroutable):
            await service.publish(sample_event(event_type))
    shipped = sample_event("return.replacement_shipped")
    await service.publish(shipped)
    await wait_until(lambda: announcements.of("notification.sent"), timeout=10, message="the shipped one's email")

    [doc] = await service.notifications()
    assert doc["event_id"] == shipped.id and doc["template"] == "buyer/replacement_shipped"
    assert [str(m["To"]) for m in mailbox.received()] == [BUYER]
