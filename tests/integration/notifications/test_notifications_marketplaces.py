"""German and insured-postage emails through the real broker, MongoDB-wire server and SMTP server:
a DE refund with return postage an insurer paid reaches its German readers once each, with the
insured line after the total and a German subject intact across MIME encoding."""

from __future__ import annotations

from collections import Counter

from services.notifications.samples import sample_data
from shared.models import Refund
from shared.money import Money
from tests.integration.notifications.conftest import fresh_event

BUYER, SELLER = "buyer@example.com", "seller@example.com"


async def test_a_german_refund_with_insured_postage_is_sent_once_in_german(service, mailbox, announcements, wait_until):
    refund: Refund = sample_data("refund.issued", locale="de", automatic=True)
    eur = {"currency": "EUR"}
    breakdown = refund.breakdown.model_copy(
        update={
            "items": refund.breakdown.items.model_copy(update=eur),
            "outbound_shipping": refund.breakdown.outbound_shipping.model_copy(update=eur),
            "restocking_fee": Money.zero("EUR"),
            "return_shipping_concession": Money.zero("EUR"),
            "other_concession": Money.zero("EUR"),
            "total": refund.breakdown.total.model_copy(update=eur),
            "insured_return_shipping": Money(amount=690, currency="EUR"),
        }
    )
    data = refund.model_copy(
        update={
            "marketplace": "DE",
            "currency": "EUR",
            "amount": refund.amount.model_copy(update=eur),
            "breakdown": breakdown,
        }
    )
    event = fresh_event("refund.issued", data, service="refunds", subject=data.refund_id)
    await service.publish(event, event)  # delivered twice
    await wait_until(lambda: service.processed(event.id, times=2))
    await wait_until(lambda: len(announcements.of("notification.sent")) >= 1, timeout=10, message="1 sent")

    docs = {doc["_id"]: doc for doc in await service.notifications()}
    received = mailbox.received()
    sent = Counter((str(m["To"]), docs[m["X-Notification-Id"]]["template"], m["Content-Language"]) for m in received)
    assert sent == Counter({(SELLER, "seller/auto_refunded", "de"): 1})
    [message] = received
    assert message["Subject"] == "Wir haben dem Käufer 55,49\xa0€ in Ihrem Namen erstattet (Bestellung ord-1001)"
    plain = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    total, insured = (
        "Erstattet insgesamt: 55,49\xa0€",
        "Rücksendekosten, erstattet von der Versandversicherung: 6,90\xa0€",
    )
    assert total in plain and insured in plain and plain.index(total) < plain.index(insured)
    assert "Mitteleuropäische" in plain  # the DE marketplace's zone
    assert "Rücksendekosten, erstattet von der Versandversicherung" in message.get_body(("html",)).get_content()
