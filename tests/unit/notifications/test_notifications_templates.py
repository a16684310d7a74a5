"""Every email renders in every template locale with the facts its reader needs; HTML input is escaped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.notifications.labels import LABELS
from services.notifications.rendering import plan
from services.notifications.samples import AT, sample_event
from services.returns.schemas import ClosureCode, RejectionReason
from shared import marketplaces
from shared.events import new_event
from shared.models import Fault, LabelType, Return
from shared.money import Money

# (event type, sample options) covering every rule of the decision table.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("return.created", {}),
    ("seller.response_due_soon", {}),
    ("return.authorized", {}),
    ("return.authorized", {"late": True}),
    ("return.authorized", {"returnless": True}),
    ("return.rejected", {}),
    ("return.closed", {}),
    ("return.expired", {}),
    ("return.shipped", {}),
    ("return.received", {}),
    ("return.refunded", {}),
    ("refund.issued", {"automatic": True}),
    ("refund.issued", {"direct": True}),
    ("refund.failed", {}),
    ("claim.filed", {}),
    ("claim.response_due_soon", {}),
    ("claim.granted", {}),
    ("claim.granted", {"automatic": True}),
    ("claim.denied", {}),
    ("claim.closed", {"already_refunded": True}),
    ("chargeback.opened", {}),
    ("chargeback.opened", {"automatic": True}),
    ("chargeback.evidence_submitted", {"automatic": True}),
    ("chargeback.won", {}),
    ("chargeback.lost", {}),
]

# Facts each template must state, per locale: (text fragments expected in both parts).
RESPONSE_DUE = {
    "en": "Wednesday, March 5, 2025, 10:00\u202fAM Eastern Standard Time",
    "zh-CN": "2025年3月5日星期三 10:00 北美东部标准时间",
    "de": "Mittwoch, 5. März 2025, 10:00 Nordamerikanische Ostküsten-Normalzeit",
}
SHIP_BY = {
    "en": "Wednesday, April 2, 2025, 11:00\u202fAM Eastern Daylight Time",
    "zh-CN": "2025年4月2日星期三 11:00 北美东部夏令时间",
    "de": "Mittwoch, 2. April 2025, 11:00 Nordamerikanische Ostküsten-Sommerzeit",
}
REFUND_DUE = {
    "en": "Thursday, March 6, 2025, 6:59\u202fPM Eastern Standard Time",
    "zh-CN": "2025年3月6日星期四 18:59 北美东部标准时间",
    "de": "Donnerstag, 6. März 2025, 18:59 Nordamerikanische Ostküsten-Normalzeit",
}
RESPOND_BY = {  # filed + 72 h
    "en": "Thursday, March 6, 2025, 10:00\u202fAM Eastern Standard Time",
    "zh-CN": "2025年3月6日星期四 10:00 北美东部标准时间",
    "de": "Donnerstag, 6. März 2025, 10:00 Nordamerikanische Ostküsten-Normalzeit",
}
EVIDENCE_DUE = {  # opened + 7 days: after the change to daylight time
    "en": "Monday, March 10, 2025, 11:00\u202fAM Eastern Daylight Time",
    "zh-CN": "2025年3月10日星期一 11:00 北美东部夏令时间",
    "de": "Montag, 10. März 2025, 11:00 Nordamerikanische Ostküsten-Sommerzeit",
}
MONEY = {
    "en": ("$55.49", "$49.99", "$5.50"),
    "zh-CN": ("US$55.49", "US$49.99", "US$5.50"),
    "de": ("55,49\xa0$", "49,99\xa0$", "5,50\xa0$"),
}
GREETING = {"en": "Hello", "zh-CN": "您好", "de": "Guten Tag"}


def expected_facts(template: str, locale: str) -> list[str]:
    total, items, shipping = MONEY[locale]

    def say(en: str, zh: str, de: str) -> str:
        return {"en": en, "zh-CN": zh, "de": de}[locale]

    facts: dict[str, list[str]] = {
        "buyer/return_requested": [
            "ret_sample1",
            "Electric kettle",
            items,
            RESPONSE_DUE[locale],
            say("Defective", "商品有缺陷", "Defekt"),
        ],
        "seller/new_request": ["ret_sample1", "ord-1001", RESPONSE_DUE[locale], "Does not heat"],
        "seller/response_due_soon": ["ret_sample1", RESPONSE_DUE[locale]],
        "buyer/return_authorized": [
            SHIP_BY[locale],
            "https://labels.example/ret_sample1.pdf",
            "UPS",
            "1Z999AA10123456784",
            "Include the power cord",
            say("Prepaid return label", "预付费退货面单", "Vorausbezahltes Rücksendeetikett"),
            say("the seller", "卖家", "der Verkäufer"),
        ],
        "buyer/returnless_refund": [items, say("Keep the item", "无需寄回", "Behalten Sie den Artikel")],
        "seller/auto_authorized": [
            "ret_sample1",
            RESPONSE_DUE[locale],
            SHIP_BY[locale],
            say("late response", "延迟答复", "verspätete Antwort"),
        ],
        "buyer/return_rejected": [
            "ret_sample1",
            say("The return window has ended", "退货期限已过", "Die Rückgabefrist ist abgelaufen"),
            "Item was used",
        ],
        "buyer/return_closed": [
            "ret_sample1",
            say("you withdrew the request", "您已撤回申请", "Sie haben die Anfrage zurückgezogen"),
            "Buyer kept the item",
        ],
        "buyer/return_expired": ["ret_sample1", SHIP_BY[locale]],
        "seller/return_shipped": ["ret_sample1", "UPS", "1Z999AA10123456784"],
        "buyer/item_received": ["ret_sample1", REFUND_DUE[locale], say("opened", "已拆封", "geöffnet")],
        "seller/item_received": ["ret_sample1", REFUND_DUE[locale], say("opened", "已拆封", "geöffnet")],
        "buyer/refunded": [
            total,
            items,
            shipping,
            say("Original shipping", "原订单运费", "Ursprüngliche Versandkosten"),
            "rf_sample1",
        ],
        "seller/auto_refunded": [total, items, shipping, "rf_sample1"],
        "buyer/refund_failed": [total, "rf_sample1"],
        "buyer/claim_received": [
            "clm_sample1",
            "ord-1001",
            total,
            RESPOND_BY[locale],
            say("Item not received", "未收到商品", "Artikel nicht erhalten"),
        ],
        "seller/claim_filed": [
            "clm_sample1",
            "ord-1001",
            total,
            RESPOND_BY[locale],
            say("Item not received", "未收到商品", "Artikel nicht erhalten"),
            "The parcel never arrived",
        ],
        "seller/claim_response_due_soon": ["clm_sample1", "ord-1001", total, RESPOND_BY[locale]],
        "buyer/claim_granted": ["clm_sample1", "ord-1001", total],
        "seller/claim_granted": [
            "clm_sample1",
            "ord-1001",
            total,
            say("charged to you", "由您承担", "wird Ihnen belastet"),
        ],
        "buyer/claim_denied": ["clm_sample1", "ord-1001", "Tracking shows delivery at the door"],
        "seller/claim_denied": [
            "clm_sample1",
            "ord-1001",
            "Tracking shows delivery at the door",
            say("in your favour", "对您有利", "zu Ihren Gunsten"),
        ],
        "buyer/claim_already_refunded": [
            "clm_sample1",
            "ord-1001",
            say("refunded in full", "此前已全额退款", "vollständig erstattet"),
        ],
        "seller/chargeback_opened": [
            "cbk_sample1",
            "ord-1001",
            total,
            say(
                "The cardholder says the item was not received",
                "持卡人称未收到商品",
                "Der Karteninhaber gibt an, den Artikel nicht erhalten zu haben",
            ),
        ],
        "seller/chargeback_answered": [
            "cbk_sample1",
            "ord-1001",
            total,
            "rf_sample1",
            say(
                "we submitted the refund as evidence",
                "已将退款记录作为证据提交给发卡行",
                "die Erstattung als Nachweis vorgelegt",
            ),
        ],
        "seller/chargeback_won": [
            "cbk_sample1",
            "ord-1001",
            total,
            say("in your favour", "对您有利", "zu Ihren Gunsten"),
        ],
        "seller/chargeback_lost": [
            "cbk_sample1",
            "ord-1001",
            total,
            say("in the cardholder's favour", "对持卡人有利", "zugunsten des Karteninhabers"),
        ],
    }
    return facts[template]


@pytest.mark.parametrize("locale", ["en", "zh-CN", "de"])
@pytest.mark.parametrize(("event_type", "options"), VARIANTS)
def test_every_email_states_its_facts(event_type: str, options: dict[str, Any], locale: str) -> None:
    emails = plan(sample_event(event_type, locale=locale, **options))
    english = plan(sample_event(event_type, locale="en", **options))
    assert emails and len(emails) == len(english)
    for email, in_english in zip(emails, english, strict=True):
        rendered = email.email
        assert rendered.locale == locale
        assert rendered.subject and "\n" not in rendered.subject
        assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
        assert f'lang="{locale}"' in rendered.html
        for fact in expected_facts(email.template, locale):
            assert fact in rendered.text, (email.template, fact)
            assert fact in rendered.html, (email.template, fact)
        assert GREETING[locale] in rendered.text.splitlines()[0] and GREETING[locale] in rendered.html
        assert not any(GREETING[other] in rendered.text for other in GREETING if other != locale)
        # The subject line is translated too (a locale falling back to English templates would fail here).
        assert (rendered.subject != in_english.email.subject) == (locale != "en")


@pytest.mark.parametrize("locale", ["en", "zh-CN", "de", "ja"])
def test_rejections_and_closures_are_said_in_words_not_codes(locale: str) -> None:
    for event_type, code in (("return.rejected", "OUTSIDE_RETURN_WINDOW"), ("return.closed", "BUYER_WITHDREW")):
        [email] = plan(sample_event(event_type, locale=locale))
        assert code not in email.email.text and code not in email.email.html, (event_type, locale)
    # Every code the API accepts has its words in every template locale.
    for kind, codes in (("rejection_reason", RejectionReason), ("closure", ClosureCode)):
        assert {str(c) for c in codes} <= LABELS[locale][kind].keys(), (kind, locale)


@pytest.mark.parametrize(
    ("locale", "card", "credit"),
    [
        ("en", "original payment method", "into your store credit"),
        ("de", "ursprüngliche Zahlungsmethode", "Shop-Guthaben"),
        ("ja", "ご購入時のお支払い方法", "ストアクレジット"),
        ("zh-CN", "原支付方式", "平台购物金"),
    ],
)
def test_a_failed_refund_names_where_it_was_going_and_promises_no_automatic_retry(locale, card, credit) -> None:
    [to_card] = plan(sample_event("refund.failed", locale=locale))
    [to_credit] = plan(sample_event("refund.failed", locale=locale, store_credit=True))
    for part in (to_card.email.text, to_card.email.html):
        assert card in part and credit not in part
    for part in (to_credit.email.text, to_credit.email.html):
        assert credit in part and card not in part
    for retrying in ("retrying", "versuchen es erneut", "再試行", "正在重试"):
        assert retrying not in to_card.email.text  # only an agent retries a failed refund


def test_returnless_authorization_says_keep_the_item_and_no_label() -> None:
    [email] = plan(sample_event("return.authorized", returnless=True))
    assert "Keep the item" in email.email.subject
    assert "label" not in email.email.text.lower()


def test_platform_authorization_tells_the_buyer_who_authorized() -> None:
    buyer, seller = plan(sample_event("return.authorized", late=True))
    assert "authorized your return on their behalf" in buyer.email.text
    assert seller.template == "seller/auto_authorized" and seller.recipient.id == "s-1"


def test_unpaid_label_states_postage_and_who_pays() -> None:
    ret = sample_event("return.authorized").typed()
    auth = ret.authorization.model_copy(
        update={
            "label_type": LabelType.UNPAID,
            "return_shipping_paid_by": Fault.BUYER,
            "return_postage": Money(amount=895, currency="USD"),
        }
    )
    event = new_event(
        "return.authorized",
        service="returns",
        subject=ret.return_id,
        data=ret.model_copy(update={"authorization": auth}),
        sequence=2,
        time=AT,
    )
    [email] = plan(event)
    assert "Unpaid return label (you pay the postage when you ship)" in email.email.text
    assert "Return shipping is paid by: you" in email.email.text
    assert "Postage for this label: $8.95" in email.email.text


def test_breakdown_lists_only_what_applies() -> None:
    [email] = plan(sample_event("return.refunded"))
    assert "Restocking fee" not in email.email.text
    assert "Original shipping: +$5.50" in email.email.text
    assert "Total refunded: $55.49" in email.email.text


def test_amounts_in_the_currency_of_the_return() -> None:
    ret = sample_event("return.created").typed()
    line = ret.lines[0].model_copy(update={"unit_price": Money(amount=1500, currency="JPY")})
    event = new_event(
        "return.created",
        service="returns",
        subject=ret.return_id,
        sequence=1,
        time=AT,
        data=ret.model_copy(update={"currency": "JPY", "marketplace": "JP", "lines": [line]}),
    )
    buyer, _ = plan(event)
    assert "¥1,500 each" in buyer.email.text
    assert "Japan Standard Time" in buyer.email.text


def test_html_in_values_is_escaped_in_html_and_kept_in_text() -> None:
    ret: Return = sample_event("return.rejected").typed()
    hostile = '<script>alert("x")</script>'
    line = ret.lines[0].model_copy(update={"title": f"Kettle {hostile}"})
    data = ret.model_copy(
        update={
            "lines": [line],
            "buyer": ret.buyer.model_copy(update={"name": "<b>Ada</b>"}),
            "rejection": ret.rejection.model_copy(update={"note": f"<a href='http://evil'>{hostile}</a>"}),
        }
    )
    event = new_event(
        "return.rejected", service="returns", subject=ret.return_id, data=data, sequence=3, time=AT + timedelta(days=1)
    )
    [email] = plan(event)
    assert "<script>" not in email.email.html and "<b>Ada</b>" not in email.email.html
    assert "&lt;script&gt;" in email.email.html and "&lt;b&gt;Ada&lt;/b&gt;" in email.email.html
    assert "<a href='http://evil'>" not in email.email.html
    assert hostile in email.email.text and "<b>Ada</b>" in email.email.text  # plain text is not HTML


def test_unknown_locale_falls_back_to_english() -> None:
    emails = plan(sample_event("return.created", locale="fr-FR"))
    assert len(emails) == 2, emails  # buyer and seller: an empty plan must not pass
    assert all(email.email.locale == "en" and "Hello" in email.email.text for email in emails)


def test_events_that_send_nothing() -> None:
    assert plan(sample_event("return.feedback_received")) == []
    assert plan(sample_event("refund.issued")) == []


def test_operators_preview_prints_every_email(capsys: pytest.CaptureFixture[str]) -> None:
    from services.notifications.preview import main

    assert main(["return.authorized", "--late", "--locale", "zh-CN"]) == 0
    out = capsys.readouterr().out
    assert "=== to buyer b-1 | buyer/return_authorized | zh-CN" in out
    assert "=== to seller s-1 | seller/auto_authorized | zh-CN" in out
    assert main(["return.feedback_received"]) == 0
    assert "return.feedback_received: no email" in capsys.readouterr().out


@pytest.mark.parametrize("locale", ["en", "zh-CN", "de", "ja"])
def test_the_seller_is_told_the_marketplaces_own_refund_deadline(locale: str, monkeypatch: pytest.MonkeyPatch) -> None:
    three_days = marketplaces.current().overridden(returns={"refund_business_days": 3})
    monkeypatch.setattr(marketplaces, "_current", three_days)
    [email] = plan(sample_event("return.shipped", locale=locale))
    days = {"en": "3 business days", "zh-CN": "3 个工作日", "de": "3 Werktage", "ja": "3営業日"}[locale]
    assert days in email.email.text and days in email.email.html


@pytest.mark.parametrize("locale", ["en", "zh-CN", "de", "ja"])
def test_a_seller_is_told_of_an_authorization_at_once_by_their_own_policy(locale: str) -> None:
    late = {"en": "late response", "zh-CN": "延迟答复", "de": "verspätete Antwort", "ja": "回答遅延"}[locale]
    at_once = {"en": "authorized at once", "zh-CN": "立即批准", "de": "sofort genehmigt", "ja": "ただちに承認"}[locale]
    keeps = {"en": "keeps the items", "zh-CN": "无需寄回商品", "de": "behält die Artikel", "ja": "お手元に残し"}[locale]
    for options in ({"automatic": True}, {"automatic": True, "returnless": True}):
        [email] = [
            e for e in plan(sample_event("return.authorized", locale=locale, **options)) if e.recipient_role == "seller"
        ]
        for part in (email.email.text, email.email.html):
            assert at_once in part and late not in part, (options, part)
            assert (keeps in part) == bool(options.get("returnless")), (options, part)
    [late_email] = [
        e for e in plan(sample_event("return.authorized", locale=locale, late=True)) if e.recipient_role == "seller"
    ]
    assert late in late_email.email.text and at_once not in late_email.email.text
    # The new-request email says an automatic authorization may follow when the policy has one.
    hint = {
        "en": "authorizes eligible requests automatically",
        "zh-CN": "自动批准符合条件的申请",
        "de": "genehmigen passende Anfragen automatisch",
        "ja": "自動で承認されます",
    }[locale]
    created = sample_event("return.created", locale=locale)
    [request] = [e for e in plan(created) if e.recipient_role == "seller"]
    assert hint not in request.email.text  # the sample's policy has no auto-authorization
    ret = created.typed()
    auto = ret.model_copy(update={"policy": ret.policy.model_copy(update={"auto_authorize": True})})
    event = new_event("return.created", service="returns", subject=ret.return_id, data=auto, sequence=1, time=AT)
    [request] = [e for e in plan(event) if e.recipient_role == "seller"]
    assert hint in request.email.text and hint in request.email.html
