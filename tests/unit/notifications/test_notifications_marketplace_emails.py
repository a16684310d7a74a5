"""Emails across marketplaces (issue 16): a party's language defaults to its marketplace's, and the
return postage a shipping insurer refunds is its own line after the refund's total."""

from __future__ import annotations

from typing import Any

import pytest

from services.notifications.rendering import plan
from services.notifications.samples import AT, sample_event
from shared.events import CloudEvent, new_event
from shared.models import Order, Refund, Return
from shared.money import Money


def de_order(**buyer: Any) -> Order:
    """A DE order snapshot whose parties name no locale (unless `buyer` gives one)."""
    return Order.model_validate(
        {
            "order_id": "ord-de-1",
            "marketplace": "DE",
            "currency": "EUR",
            "buyer": {"id": "b-1", "name": "Jana Käufer", "email": "jana@example.de", **buyer},
            "seller": {
                "id": "s-1",
                "name": "Beispiel GmbH",
                "email": "shop@example.de",
                "return_address": {"line1": "Hafenstr. 1", "city": "Hamburg", "postal_code": "20457", "country": "DE"},
            },
            "lines": [
                {
                    "line_id": "l1",
                    "sku": "SKU-KETTLE",
                    "title": "Wasserkocher",
                    "category": "kitchen",
                    "quantity": 1,
                    "unit_price": {"amount": 4999, "currency": "EUR"},
                }
            ],
            "shipping_paid": {"amount": 0, "currency": "EUR"},
            "ordered_at": "2025-02-20T10:00:00+00:00",
            "delivered_at": "2025-02-24T10:00:00+00:00",
            "payment": {"provider": "stripe", "reference": "pi_de_1"},
        }
    )


def return_created(order: Order) -> CloudEvent:
    """`return.created` for `order`, its parties copied from the snapshot as the returns service does."""
    sample: Return = sample_event("return.created").typed()
    line = sample.lines[0].model_copy(update={"unit_price": order.lines[0].unit_price, "title": order.lines[0].title})
    data = sample.model_copy(
        update={
            "order_id": order.order_id,
            "marketplace": order.marketplace,
            "currency": order.currency,
            "buyer": order.buyer,
            "seller": order.seller,
            "lines": [line],
        }
    )
    return new_event("return.created", service="returns", subject=data.return_id, data=data, sequence=1, time=AT)


def test_a_de_buyer_without_a_locale_reads_german() -> None:
    order = de_order()
    assert order.buyer.locale == "de" and order.seller.locale == "de"  # filled by the marketplace
    buyer, seller = plan(return_created(order))
    for email in (buyer, seller):
        assert email.email.locale == "de" and 'lang="de"' in email.email.html
        assert email.email.text.startswith("Guten Tag")
        assert "Mitteleuropäische Normalzeit" in email.email.text  # the DE marketplace's zone
    assert buyer.email.subject == "Wir haben Ihre Rücksendeanfrage zur Bestellung ord-de-1 erhalten"
    assert "je 49,99\xa0€ - Grund: Defekt" in buyer.email.text


def test_a_german_subject_keeps_the_no_break_space_of_its_amount() -> None:
    [email] = plan(sample_event("return.refunded", locale="de"))
    assert email.email.subject == "Wir haben Ihnen 55,49\xa0$ für die Bestellung ord-1001 erstattet"


def test_a_de_buyer_who_names_english_reads_english() -> None:
    buyer, _ = plan(return_created(de_order(locale="en-GB")))
    assert buyer.email.locale == "en" and buyer.email.text.startswith("Hello")
    assert "€49.99 each" in buyer.email.text  # English words, British number format


# (label, amount) of the insured line and of the total, as the breakdown writes them.
INSURED = {
    "en": ("Return postage, refunded by the shipping insurer", "$8.00"),
    "zh-CN": ("退货运费由运费险赔付", "US$8.00"),
    "de": ("Rücksendekosten, erstattet von der Versandversicherung", "8,00\xa0$"),
}
TOTAL = {
    "en": ("Total refunded", "$55.49"),
    "zh-CN": ("退款总额", "US$55.49"),
    "de": ("Erstattet insgesamt", "55,49\xa0$"),
}
COLON = {"en": ": ", "zh-CN": "\uff1a", "de": ": "}  # Chinese text writes a full-width colon


def insured(event: CloudEvent, amount: int | None = 800) -> CloudEvent:
    refund: Refund = event.typed()
    postage = None if amount is None else Money(amount=amount, currency="USD")
    breakdown = refund.breakdown.model_copy(update={"insured_return_shipping": postage})
    data = refund.model_copy(update={"breakdown": breakdown})
    return new_event(event.type, service="refunds", subject=refund.refund_id, data=data, sequence=2, time=AT)


@pytest.mark.parametrize("locale", ["en", "zh-CN", "de"])
@pytest.mark.parametrize(
    ("event_type", "options", "template"),
    [("return.refunded", {}, "buyer/refunded"), ("refund.issued", {"automatic": True}, "seller/auto_refunded")],
)
def test_insured_return_postage_is_its_own_line_after_the_total(
    event_type: str, options: dict[str, Any], template: str, locale: str
) -> None:
    [email] = plan(insured(sample_event(event_type, locale=locale, **options)))
    assert email.template == template
    text, html = email.email.text, email.email.html
    (label, amount), (total_label, total) = INSURED[locale], TOTAL[locale]
    # The total is the refund's own (the insurer's money is not in it); the insured line follows it.
    insured_line, total_line = label + COLON[locale] + amount, total_label + COLON[locale] + total
    assert total_line in text and insured_line in text
    assert text.index(total_line) < text.index(insured_line)
    assert f'<tr><td>{label}</td><td align="right">{amount}</td></tr>' in html
    assert html.index(total) < html.index(label)


@pytest.mark.parametrize("amount", [None, 0])
@pytest.mark.parametrize("locale", ["en", "zh-CN", "de"])
def test_no_insured_line_without_insured_postage(amount: int | None, locale: str) -> None:
    [email] = plan(insured(sample_event("return.refunded", locale=locale), amount))
    label, _ = INSURED[locale]
    assert label not in email.email.text and label not in email.email.html
