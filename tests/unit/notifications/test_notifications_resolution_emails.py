"""Keep-it offer, replacement and store credit emails (issue 15): what each reader is told, in their
language, zone and currency; and what the existing emails say of a store-credit refund or a
replacing return."""

from __future__ import annotations

import pytest

from services.notifications.rendering import PlannedEmail, plan
from services.notifications.resolution_samples import sample_offer, sample_replacement
from services.notifications.samples import AT, sample_event
from services.notifications.subjects import references
from shared.events import CloudEvent, new_event
from shared.models import RefundKind, Return, ReturnStatus
from shared.money import Money
from shared.resolution_models import Offer, Replacement, StoreCreditEntry
from tests.unit.notifications.test_notifications_templates import SHIP_BY  # the one copy of that date

EXPIRES = {  # made Tuesday 4 March 15:00 UTC + 72 h, in New York (the US marketplace's zone)
    "en": "Friday, March 7, 2025, 10:00\u202fAM Eastern Standard Time",
    "zh-CN": "2025年3月7日星期五 10:00 北美东部标准时间",
    "de": "Freitag, 7. März 2025, 10:00 Nordamerikanische Ostküsten-Normalzeit",
}
REFUND_DUE = {  # the unavailable sample's refund_due_at: after the change to daylight time
    "en": "Monday, March 10, 2025, 11:00\u202fAM Eastern Daylight Time",
    "zh-CN": "2025年3月10日星期一 11:00 北美东部夏令时间",
    "de": "Montag, 10. März 2025, 11:00 Nordamerikanische Ostküsten-Sommerzeit",
}
US = {"en": "$", "zh-CN": "US$"}


def dollars(amount: str, locale: str) -> str:
    """`amount` ("15.00") in US dollars as the reader's locale writes it."""
    if locale == "de":
        return amount.replace(".", ",") + "\xa0$"
    return US[locale] + amount


def expected_facts(template: str, locale: str) -> list[str]:

    def say(en: str, zh: str, de: str) -> str:
        return {"en": en, "zh-CN": zh, "de": de}[locale]

    facts = {
        "buyer/offer_made": [
            dollars("15.00", locale),
            "ret_sample1",
            "ofr_sample1",
            EXPIRES[locale],
            say("Accept offer", "接受提议", "Angebot annehmen"),
            say("Decline offer", "拒绝提议", "Angebot ablehnen"),
            say("keep the item", "保留商品", "den Artikel behalten"),
            say("your original payment method", "您的原支付方式", "Ihre ursprüngliche Zahlungsmethode"),
            "Keep the kettle: we refund $15.00 for the trouble",
        ],
        "buyer/offer_accepted": [
            dollars("15.00", locale),
            "ret_sample1",
            "ofr_sample1",
            say("original payment", "原支付方式", "ursprüngliche Zahlungsmethode"),
        ],
        "seller/offer_accepted": [
            dollars("15.00", locale),
            "ret_sample1",
            "ord-1001",
            "Electric kettle",
            say("charged to you", "由您承担", "Ihnen belastet"),
        ],
        "seller/offer_declined": [
            dollars("15.00", locale),
            "ret_sample1",
            SHIP_BY[locale],
            say("declined", "拒绝", "abgelehnt"),
        ],
        "buyer/offer_expired": [dollars("15.00", locale), "ret_sample1", EXPIRES[locale], SHIP_BY[locale]],
        "seller/offer_expired": [dollars("15.00", locale), "ret_sample1", EXPIRES[locale]],
        "seller/replacement_ordered": [
            "ret_sample1",
            "ord-1001",
            "SKU-KETTLE-RED",
            "Electric kettle",
            "PUT /v1/returns/ret_sample1/replacement",
        ],
        "buyer/replacement_shipped": ["ret_sample1", "FedEx", "794612345678", "SKU-KETTLE-RED"],
        "buyer/replacement_unavailable": [
            "ret_sample1",
            dollars("49.99", locale),
            REFUND_DUE[locale],
            "Out of stock until next season",
            say("refunded instead", "改为获得退款", "stattdessen eine Erstattung"),
        ],
        "buyer/store_credit_granted": [
            dollars("58.26", locale),  # credited, bonus included
            dollars("55.49", locale),  # the refund
            dollars("2.77", locale),  # the bonus
            dollars("78.26", locale),  # the balance after it
            "ret_sample1",
            "rf_sample1",
        ],
    }
    return facts[template]


EMAILS: list[tuple[str, list[tuple[str, str]]]] = [
    ("return.offer_made", [("buyer", "buyer/offer_made")]),
    ("return.offer_accepted", [("buyer", "buyer/offer_accepted"), ("seller", "seller/offer_accepted")]),
    ("return.offer_declined", [("seller", "seller/offer_declined")]),
    ("return.offer_expired", [("buyer", "buyer/offer_expired"), ("seller", "seller/offer_expired")]),
    ("return.replacement_ordered", [("seller", "seller/replacement_ordered")]),
    ("return.replacement_shipped", [("buyer", "buyer/replacement_shipped")]),
    ("return.replacement_unavailable", [("buyer", "buyer/replacement_unavailable")]),
    ("store_credit.granted", [("buyer", "buyer/store_credit_granted")]),
]


def parts(email: PlannedEmail) -> tuple[str, str]:
    return email.email.text, email.email.html


def event_of(event_type: str, data: Return | StoreCreditEntry) -> CloudEvent:
    if isinstance(data, StoreCreditEntry):
        return new_event(event_type, service="refunds", subject=data.buyer_id, data=data, sequence=1, time=AT)
    return new_event(event_type, service="returns", subject=data.return_id, data=data, sequence=data.version, time=AT)


@pytest.mark.parametrize("locale", ["en", "zh-CN", "de"])
@pytest.mark.parametrize(("event_type", "expected"), EMAILS)
def test_every_resolution_email_states_its_facts(event_type: str, expected: list, locale: str) -> None:
    emails = plan(sample_event(event_type, locale=locale))
    assert [(e.recipient_role, e.template) for e in emails] == expected
    for email in emails:
        rendered = email.email
        assert rendered.locale == locale and rendered.subject and "\n" not in rendered.subject
        assert rendered.html.lstrip().startswith("<!DOCTYPE html>") and f'lang="{locale}"' in rendered.html
        assert email.recipient.id == ("b-1" if email.recipient_role == "buyer" else "s-1")
        for fact in expected_facts(email.template, locale):
            assert fact in rendered.text, (email.template, fact)
            assert fact in rendered.html, (email.template, fact)
        assert ("您好" in rendered.text) == (locale == "zh-CN")
        assert ("Guten Tag" in rendered.text) == (locale == "de")


def test_the_offer_is_answered_by_in_the_buyers_own_time_zone() -> None:
    ret = sample_event("return.offer_made").typed()
    for locale, expected in (
        ("zh-CN", "2025年3月7日星期五 23:00 中国标准时间"),
        ("en", "Friday, March 7, 2025, 11:00\u202fPM China Standard Time"),
    ):
        buyer = ret.buyer.model_copy(update={"locale": locale, "timezone": "Asia/Shanghai"})
        [email] = plan(event_of("return.offer_made", ret.model_copy(update={"buyer": buyer})))
        assert expected in email.email.text and expected in email.email.html
        assert ("3月7日" if locale == "zh-CN" else "March 7, 2025") in email.email.subject
        assert EXPIRES["en"] not in email.email.text


@pytest.mark.parametrize(
    ("currency", "marketplace", "amount", "expected"),
    [
        ("JPY", "JP", 1500, {"en": "¥1,500", "zh-CN": "JP¥1,500"}),
        ("BHD", "BH", 1250, {"en": "BHD1.250", "zh-CN": "BHD1.250"}),
        ("EUR", "DE", 1500, {"en": "€15.00", "zh-CN": "€15.00"}),
    ],
)
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_offer_and_store_credit_amounts_in_their_currency(
    currency: str, marketplace: str, amount: int, expected: dict[str, str], locale: str
) -> None:
    money = Money(amount=amount, currency=currency)
    ret = sample_event("return.offer_accepted", locale=locale).typed()
    line = ret.lines[0].model_copy(update={"unit_price": Money(amount=amount * 3, currency=currency)})
    offer = Offer.model_validate(sample_offer("accepted") | {"amount": money.model_dump()})
    changed = ret.model_copy(
        update={
            "currency": currency,
            "marketplace": marketplace,
            "lines": [line],
            "offers": [offer],
            "settlement": None,
        }
    )
    entry = sample_event("store_credit.granted", locale=locale, bonus=False).typed()
    entry = entry.model_copy(update={"amount": money, "balance": money})
    emails = [*plan(event_of("return.offer_accepted", changed)), *plan(event_of("store_credit.granted", entry))]
    assert len(emails) == 3
    for email in emails:
        assert expected[locale] in email.email.subject, email.template
        assert all(expected[locale] in part for part in parts(email))
        assert all(US[locale] + "15.00" not in part for part in parts(email))


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_grant_without_a_bonus_does_not_mention_one(locale: str) -> None:
    [email] = plan(sample_event("store_credit.granted", locale=locale, bonus=False))
    for part in parts(email):
        assert f"{US[locale]}55.49" in part and f"{US[locale]}75.49" in part
        assert ("奖励" if locale == "zh-CN" else "bonus") not in part


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_refund_to_store_credit_says_store_credit_not_the_card(locale: str) -> None:
    zh = locale == "zh-CN"
    [credit] = plan(sample_event("return.refunded", locale=locale, store_credit=True))
    [card] = plan(sample_event("return.refunded", locale=locale))
    for part in parts(credit):
        assert ("平台购物金" if zh else "store credit") in part and f"{US[locale]}2.77" in part
        assert ("原支付方式" if zh else "original payment method") not in part
        assert ("银行处理时间" if zh else "Depending on your bank") not in part
    assert ("购物金" if zh else "store credit") in credit.email.subject
    for part in parts(card):
        assert ("原支付方式" if zh else "original payment method") in part
        assert ("购物金" if zh else "store credit") not in part


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_replacing_returns_receipt_promises_the_replacement_not_a_refund(locale: str) -> None:
    zh = locale == "zh-CN"
    buyer, seller = plan(sample_event("return.received", locale=locale, replacing=True))
    assert (buyer.template, seller.template) == ("buyer/item_received", "seller/item_received")
    for part in parts(buyer):
        assert "SKU-KETTLE-RED" in part and ("换货" if zh else "replacement") in part
        assert ("退款最迟" if zh else "refund is due") not in part
    assert ("换货" if zh else "replacement") in buyer.email.subject
    for part in parts(seller):
        assert ("无需退款" if zh else "No refund is due") in part and ("请在" if zh else "issue the refund") not in part
    [refunding, _] = plan(sample_event("return.received", locale=locale))
    assert ("退款最迟" if zh else "refund is due") in refunding.email.text
    assert ("换货" if zh else "replacement") not in refunding.email.text


def test_a_replacement_already_shipped_at_receipt_is_told_with_its_tracking() -> None:
    ret = sample_event("return.received", replacing=True).typed()
    shipped = Replacement.model_validate(sample_replacement("shipped"))
    buyer, seller = plan(event_of("return.received", ret.model_copy(update={"replacement": shipped})))
    assert "already on its way with FedEx, tracking number 794612345678" in buyer.email.text
    assert "which has already shipped" in seller.email.text


def test_a_returnless_replacement_keeps_the_item_and_promises_the_replacement() -> None:
    [email] = plan(sample_event("return.authorized", returnless=True, replacing=True))
    assert "Keep the item: your replacement" in email.email.subject
    assert "You asked for a replacement" in email.email.text and "Your refund of" not in email.email.text
    [credit] = plan(sample_event("return.authorized", returnless=True, store_credit=True))
    assert "is being issued to your store credit" in credit.email.text


def test_an_unavailable_replacement_before_receipt_asks_for_the_item_back_and_names_the_destination() -> None:
    ret = sample_event("return.replacement_unavailable", store_credit=True).typed()
    before_receipt = ret.model_copy(
        update={"status": ReturnStatus.AUTHORIZED, "receipt": None, "received_at": None, "refund_due_at": None}
    )
    before_receipt = before_receipt.model_copy(update={"ship_by": before_receipt.authorization.ship_by})
    [email] = plan(event_of("return.replacement_unavailable", before_receipt))
    for part in parts(email):
        assert "your store credit" in part and SHIP_BY["en"] in part and "original payment" not in part
        assert REFUND_DUE["en"] not in part


def test_a_replacement_shipped_before_receipt_still_asks_for_the_item_back() -> None:
    ret = sample_event("return.replacement_shipped").typed()
    early = ret.model_copy(update={"status": ReturnStatus.AUTHORIZED, "receipt": None, "received_at": None})
    early = early.model_copy(update={"ship_by": early.authorization.ship_by})
    [email] = plan(event_of("return.replacement_shipped", early))
    assert f"Please still send the returned item back by {SHIP_BY['en']}" in email.email.text
    [received] = plan(sample_event("return.replacement_shipped"))
    assert "Please still send" not in received.email.text


def test_the_seller_is_told_what_to_send_sku_and_quantity() -> None:
    ret = sample_event("return.replacement_ordered", locale="zh-CN").typed()
    lines = [{"line_id": "l1", "sku": "SKU-KETTLE-BLUE", "quantity": 2}]
    replacement = Replacement.model_validate(sample_replacement("ordered", lines=lines))
    [email] = plan(event_of("return.replacement_ordered", ret.model_copy(update={"replacement": replacement})))
    assert "- Electric kettle（SKU SKU-KETTLE-BLUE）× 2" in email.email.text
    assert '<td><strong>SKU-KETTLE-BLUE</strong></td><td align="right">2</td>' in email.email.html


def test_an_agents_offer_is_told_as_the_marketplaces_and_its_note_is_escaped() -> None:
    ret = sample_event("return.offer_made").typed()
    hostile = '<script>alert("x")</script>'
    offer = Offer.model_validate(sample_offer(made_by={"role": "agent", "id": "agent-3"}, note=hostile))
    [email] = plan(event_of("return.offer_made", ret.model_copy(update={"offers": [offer]})))
    assert "Marketplace support offers you $15.00 back" in email.email.text
    assert hostile in email.email.text and "<script>" not in email.email.html and "&lt;script&gt;" in email.email.html


def test_a_grant_is_recorded_with_its_ids_only() -> None:
    entry = sample_event("store_credit.granted").typed()
    assert references(entry) == {
        "return_id": "ret_sample1",
        "refund_id": "rf_sample1",
        "claim_id": None,
        "chargeback_id": None,
        "order_id": "ord-1001",
        "return_version": None,
    }


def test_operators_preview_renders_resolution_variants(capsys: pytest.CaptureFixture[str]) -> None:
    from services.notifications.preview import main

    assert main(["return.refunded", "--store-credit", "--locale", "zh-CN"]) == 0
    assert "=== to buyer b-1 | buyer/refunded | zh-CN" in (out := capsys.readouterr().out) and "平台购物金" in out
    assert main(["return.received", "--replacing"]) == 0
    assert "your replacement is coming" in capsys.readouterr().out
    assert main(["store_credit.debited"]) == 0 and "store_credit.debited: no email" in capsys.readouterr().out


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_an_offers_refund_is_told_as_the_agreed_amount_for_keeping_the_item(locale: str) -> None:
    # As the refunds service pays an accepted offer: kind `offer`, the amount booked as other_concession.
    refund = sample_event("return.refunded", locale=locale).typed()
    amount, zero = Money(amount=1500, currency="USD"), Money(amount=0, currency="USD")
    breakdown = refund.breakdown.model_copy(
        update={"items": zero, "outbound_shipping": zero, "other_concession": amount, "total": amount}
    )
    offer_refund = refund.model_copy(
        update={
            "refund_id": "rf_ofr_sample1",
            "kind": RefundKind.OFFER,
            "offer_id": "ofr_sample1",
            "amount": amount,
            "breakdown": breakdown,
        }
    )
    event = new_event(
        "return.refunded", service="refunds", subject="ret_sample1", data=offer_refund, sequence=2, time=AT
    )
    [email] = plan(event)
    zh = locale == "zh-CN"
    for part in parts(email):
        assert f"{US[locale]}15.00" in part and ("保留退货 ret_sample1 商品" if zh else "for keeping the item") in part
        assert ("卖家额外补偿" if zh else "Goodwill") not in part
        assert ("退货商品金额" if zh else "Items returned") not in part
