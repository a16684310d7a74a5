"""Japanese emails (issue 16): every template of en/ has a ja/ twin that a ja reader gets, in text and
HTML, with no English left in subjects or bodies; dates, times and money are Babel's Japanese forms."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmtplib.email import flatten_message

from services.notifications.domain import new_notification
from services.notifications.labels import LABELS
from services.notifications.mail import build_message, message_bytes
from services.notifications.rendering import TEMPLATES_DIR, PlannedEmail, plan
from services.notifications.samples import AT, sample_event
from shared.events import CloudEvent, new_event
from shared.models import Refund, Return
from shared.money import Money
from tests.unit.notifications.test_notifications_mail_bytes import NOW, SETTINGS
from tests.unit.notifications.test_notifications_resolution_emails import EMAILS
from tests.unit.notifications.test_notifications_templates import VARIANTS

# Every rule of the decision table, the resolution emails, and the variants that change a template's text.
ALL_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    *VARIANTS,
    *[(event_type, {}) for event_type, _ in EMAILS],
    ("return.refunded", {"store_credit": True}),
    ("return.received", {"replacing": True}),
    ("return.authorized", {"returnless": True, "replacing": True}),
]

# The sample's instants in New York (the US marketplace's zone), as Babel writes them in Japanese.
RESPONSE_DUE = "2025年3月5日水曜日 10:00 アメリカ東部標準時"
SHIP_BY = "2025年4月2日水曜日 11:00 アメリカ東部夏時間"
REFUND_DUE = "2025年3月6日木曜日 18:59 アメリカ東部標準時"
RESPOND_BY = "2025年3月6日木曜日 10:00 アメリカ東部標準時"
EVIDENCE_DUE = "2025年3月10日月曜日 11:00 アメリカ東部夏時間"
EXPIRES = "2025年3月7日金曜日 10:00 アメリカ東部標準時"
UNAVAILABLE_REFUND_DUE = "2025年3月10日月曜日 11:00 アメリカ東部夏時間"

FACTS: dict[str, list[str]] = {
    "buyer/return_requested": ["ret_sample1", "Electric kettle", "$49.99", RESPONSE_DUE, "不良品", "受け付けました"],
    "seller/new_request": ["ret_sample1", "ord-1001", RESPONSE_DUE, "Does not heat", "返品リクエスト"],
    "seller/response_due_soon": ["ret_sample1", RESPONSE_DUE, "回答遅延"],
    "buyer/return_authorized": [SHIP_BY, "https://labels.example/ret_sample1.pdf", "UPS", "送料支払い済み", "出品者"],
    "buyer/returnless_refund": ["ret_sample1", "ご返送いただく必要はございません"],
    "seller/auto_authorized": ["ret_sample1", RESPONSE_DUE, SHIP_BY, "回答遅延"],
    "buyer/return_rejected": ["ret_sample1", "返品期間が終了しています", "Item was used", "承認されませんでした"],
    "buyer/return_closed": ["ret_sample1", "リクエストを取り下げられました", "Buyer kept the item", "終了しました"],
    "buyer/return_expired": ["ret_sample1", SHIP_BY, "有効期限切れ"],
    "seller/return_shipped": ["ret_sample1", "UPS", "1Z999AA10123456784", "2営業日"],
    "buyer/item_received": ["ret_sample1", "開封済み", "出品者が受け取りました"],
    "seller/item_received": ["ret_sample1", "開封済み", "受け取り"],
    "buyer/refunded": ["$55.49", "$49.99", "+$5.50", "ご購入時の送料", "返金額合計", "rf_sample1"],
    "seller/auto_refunded": ["$55.49", "$49.99", "+$5.50", "返金額合計", "rf_sample1", "出品者様に代わって"],
    "buyer/refund_failed": ["$55.49", "rf_sample1", "カスタマーサービスが返金を完了いたします"],
    "buyer/claim_received": ["clm_sample1", "ord-1001", "$55.49", RESPOND_BY, "商品が届かない"],
    "seller/claim_filed": ["clm_sample1", RESPOND_BY, "商品が届かない", "The parcel never arrived"],
    "seller/claim_response_due_soon": ["clm_sample1", "ord-1001", "$55.49", RESPOND_BY],
    "buyer/claim_granted": ["clm_sample1", "ord-1001", "$55.49", "承認いたしました"],
    "seller/claim_granted": ["clm_sample1", "ord-1001", "$55.49", "出品者様のご負担"],
    "buyer/claim_denied": ["clm_sample1", "Tracking shows delivery at the door", "承認いたしかねます"],
    "seller/claim_denied": ["clm_sample1", "Tracking shows delivery at the door", "出品者様に有利"],
    "buyer/claim_already_refunded": ["clm_sample1", "ord-1001", "全額返金済み"],
    "seller/chargeback_opened": ["cbk_sample1", "$55.49", "カード会員は、商品が届いていないと申し立てています"],
    "seller/chargeback_answered": ["cbk_sample1", "$55.49", "rf_sample1", "返金の記録を証拠として"],
    "seller/chargeback_won": ["cbk_sample1", "ord-1001", "$55.49", "出品者様に有利"],
    "seller/chargeback_lost": ["cbk_sample1", "ord-1001", "$55.49", "カード会員に有利"],
    "buyer/offer_made": [
        "$15.00",
        "ofr_sample1",
        EXPIRES,
        "「提案を承諾」",
        "「提案を辞退」",
        "ご購入時のお支払い方法",
    ],
    "buyer/offer_accepted": ["$15.00", "ret_sample1", "ofr_sample1", "ご購入時のお支払い方法"],
    "seller/offer_accepted": ["$15.00", "ret_sample1", "Electric kettle", "出品者様のご負担"],
    "seller/offer_declined": ["$15.00", "ret_sample1", SHIP_BY, "辞退しました"],
    "buyer/offer_expired": ["$15.00", "ret_sample1", EXPIRES, SHIP_BY],
    "seller/offer_expired": ["$15.00", "ret_sample1", EXPIRES],
    "seller/replacement_ordered": ["ret_sample1", "SKU-KETTLE-RED", "PUT /v1/returns/ret_sample1/replacement"],
    "buyer/replacement_shipped": ["ret_sample1", "FedEx", "794612345678", "SKU-KETTLE-RED", "発送いたしました"],
    "buyer/replacement_unavailable": ["$49.99", UNAVAILABLE_REFUND_DUE, "Out of stock until next season"],
    "buyer/store_credit_granted": ["$58.26", "$55.49", "$2.77", "$78.26", "rf_sample1", "ストアクレジット"],
}

# What the samples carry (names, titles, notes, carriers, codes): the only words allowed to stay English.
SAMPLE_WORDS = re.compile(
    r"Ada Buyer|Acme Goods|Electric kettle|Does not heat|Include the power cord|Item was used|Buyer kept the item"
    r"|Tracking shows [a-z ]+|The parcel never arrived|Keep the kettle: we refund \$15\.00 for the trouble"
    r"|Out of stock until next season|UPS|FedEx|SKU[-A-Z]*|PUT /v1/returns/\w+/replacement|https?://[\w./]+"
    r"|[\w$.,+-]*[\d_][\w$.,+-]*",  # ids and amounts: ret_sample1, ord-1001, $55.49
    re.ASCII,
)
ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")


def untranslated(part: str) -> list[str]:
    return ENGLISH_WORD.findall(SAMPLE_WORDS.sub(" ", re.sub(r"<[^>]+>", " ", part)))


def japanese_emails() -> list[PlannedEmail]:
    return [
        email
        for event_type, options in ALL_VARIANTS
        for email in plan(sample_event(event_type, locale="ja", **options))
    ]


def test_ja_has_every_template_of_en_and_every_label() -> None:
    def files(locale: str) -> set[str]:
        return {str(path.relative_to(TEMPLATES_DIR / locale)) for path in (TEMPLATES_DIR / locale).rglob("*.*")}

    assert files("ja") == files("en")
    english = json.loads((TEMPLATES_DIR.parent / "labels" / "en.json").read_text(encoding="utf-8"))
    for kind, words in english.items():
        assert set(LABELS["ja"][kind]) == set(words), kind
        assert all(not ENGLISH_WORD.search(LABELS["ja"][kind][code]) for code in words), kind


def test_the_samples_send_every_template() -> None:
    en = TEMPLATES_DIR / "en"
    templates = {str(p.relative_to(en)).removesuffix(".txt") for p in en.rglob("*.txt") if not p.name.startswith("_")}
    assert {email.template for email in japanese_emails()} == templates == set(FACTS)


@pytest.mark.parametrize("locale", ["ja", "ja-JP", "ja_jp"])
@pytest.mark.parametrize(("event_type", "options"), ALL_VARIANTS)
def test_every_email_is_japanese_and_states_its_facts(event_type: str, options: dict[str, Any], locale: str) -> None:
    emails = plan(sample_event(event_type, locale=locale, **options))
    assert emails
    english = {(e.recipient_role, e.template): e.email for e in plan(sample_event(event_type, **options))}
    for email in emails:
        rendered = email.email
        assert rendered.locale == "ja"
        assert rendered.subject and "\n" not in rendered.subject
        assert rendered.subject != english[(email.recipient_role, email.template)].subject
        assert not untranslated(rendered.subject), (email.template, rendered.subject)
        assert rendered.html.lstrip().startswith("<!DOCTYPE html>") and '<html lang="ja">' in rendered.html
        for part in (rendered.text, rendered.html):
            assert f"{email.recipient.name} 様" in part and "Hello" not in part
            assert not untranslated(part), (email.template, untranslated(part))
            assert "マーケットプレイス返品センター" in part
            for fact in FACTS[email.template]:
                assert fact in part, (email.template, fact)


def event_of(event_type: str, data: Return | Refund) -> CloudEvent:
    subject = data.return_id or ""
    return new_event(event_type, service="returns", subject=subject, data=data, sequence=data.version, time=AT)


def test_a_japanese_marketplace_return_reads_yen_and_tokyo_dates() -> None:
    ret = sample_event("return.created", locale="ja").typed()
    yen = Money(amount=1000, currency="JPY")
    line = ret.lines[0].model_copy(update={"unit_price": yen})
    due = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)  # midnight starting Friday 6 March in Tokyo
    data = ret.model_copy(update={"currency": "JPY", "marketplace": "JP", "lines": [line], "response_due_at": due})
    buyer, seller = plan(event_of("return.created", data))
    assert "2026年3月6日までにご回答ください" in seller.email.subject
    for email in (buyer, seller):
        for part in (email.email.text, email.email.html):
            assert "￥1,000" in part and "2026年3月6日金曜日 0:00 日本標準時" in part
            assert "¥1,000" not in part and "JP¥" not in part


def refund_with(insured: Money | None, currency: str = "CNY") -> CloudEvent:
    refund = sample_event("return.refunded", locale="ja").typed()

    def money(amount: int) -> Money:
        return Money(amount=amount, currency=currency)

    breakdown = refund.breakdown.model_copy(
        update={
            "items": money(4999),
            "outbound_shipping": money(550),
            "total": money(5549),
            "insured_return_shipping": insured,
        }
    )
    data = refund.model_copy(
        update={"currency": currency, "marketplace": "CN", "amount": money(5549), "breakdown": breakdown}
    )
    return new_event("return.refunded", service="refunds", subject="ret_sample1", data=data, sequence=2, time=AT)


def test_the_insured_return_postage_is_its_own_line_after_the_total() -> None:
    [email] = plan(refund_with(Money(amount=1200, currency="CNY")))
    text, html = email.email.text, email.email.html
    total = "  返金額合計\N{FULLWIDTH COLON}元55.49"  # the partial's own colon; the insured line's is ASCII
    assert f"{total}\n  返品送料（配送保険より返金）: 元12.00\n" in text
    assert '<td>返品送料（配送保険より返金）</td><td align="right">元12.00</td>' in html
    assert html.index("返金額合計") < html.index("配送保険")
    [plain] = plan(refund_with(None))
    assert all("配送保険" not in part for part in (plain.email.text, plain.email.html))


def test_html_in_values_is_escaped_in_japanese_html_and_kept_in_text() -> None:
    ret: Return = sample_event("return.rejected", locale="ja").typed()
    hostile = '<script>alert("x")</script>'
    data = ret.model_copy(
        update={
            "buyer": ret.buyer.model_copy(update={"name": "<b>Ada</b>"}),
            "rejection": ret.rejection.model_copy(update={"note": hostile}),
        }
    )
    [email] = plan(event_of("return.rejected", data))
    assert "<script>" not in email.email.html and "&lt;b&gt;Ada&lt;/b&gt; 様" in email.email.html
    assert hostile in email.email.text and "<b>Ada</b> 様" in email.email.text


@pytest.mark.parametrize(("event_type", "options"), ALL_VARIANTS)
def test_japanese_emails_are_sent_byte_for_byte_as_the_email_package_would(event_type: str, options: dict) -> None:
    # Long unspaced Japanese lines and subjects are where a hand-made MIME builder could fold differently.
    event = sample_event(event_type, locale="ja", **options)
    for email in plan(event):
        doc = new_notification(event, event.typed(), email, NOW)
        for settings in SETTINGS:
            fast = message_bytes(doc, settings)
            assert fast is not None and fast == flatten_message(build_message(doc, settings)), email.template
