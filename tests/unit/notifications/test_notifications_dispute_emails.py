"""Claim and chargeback emails, and a claim's refund: what each reader is told, in their language,
zone and currency (every template's facts are checked with the others' in test_notifications_templates.py)."""

from __future__ import annotations

from typing import Any

import pytest

from services.notifications.rendering import plan
from services.notifications.samples import AT, sample_event
from shared.dispute_models import ChargebackCategory
from shared.events import CloudEvent, new_event
from shared.models import RefundKind
from shared.money import Money
from tests.unit.notifications.test_notifications_templates import EVIDENCE_DUE, RESPOND_BY  # the one copy of the dates

TOTAL = {"en": "$55.49", "zh-CN": "US$55.49"}


def dispute_event(event_type: str, data: Any) -> CloudEvent:
    subject = data.claim_id if event_type.startswith("claim.") else data.chargeback_id
    return new_event(event_type, service="disputes", subject=subject, data=data, sequence=data.version, time=AT)


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_claim_granted_at_the_deadline_tells_the_seller_they_did_not_respond(locale: str) -> None:
    zh = locale == "zh-CN"
    buyer, seller = plan(sample_event("claim.granted", locale=locale, automatic=True))
    assert ("卖家未在期限内答复" if zh else "The seller did not respond to your A-to-z claim") in buyer.email.text
    assert ("您未在" if zh else "You did not respond") in seller.email.text
    assert RESPOND_BY[locale] in seller.email.text and RESPOND_BY[locale] in seller.email.html
    assert all("The seller did not respond in time." not in e.email.text for e in (buyer, seller))
    by_agent = plan(sample_event("claim.granted", locale=locale))[1]
    assert "Tracking shows no delivery" in by_agent.email.text  # an agent's note is shown
    assert ("您未在" if zh else "You did not respond") not in by_agent.email.text
    assert ("平台客服审核" if zh else "A marketplace agent reviewed") in by_agent.email.text


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_chargeback_the_platform_answered_says_so_and_asks_for_nothing(locale: str) -> None:
    zh = locale == "zh-CN"
    [answered] = plan(sample_event("chargeback.opened", locale=locale, automatic=True))
    [asked] = plan(sample_event("chargeback.opened", locale=locale))
    said = "平台将代您以退款记录作为证据答复" if zh else "the marketplace answers the dispute for you"
    for part in (answered.email.text, answered.email.html):
        assert said in part and "rf_sample1" in part and EVIDENCE_DUE[locale] not in part
    for part in (asked.email.text, asked.email.html):
        assert said not in part and EVIDENCE_DUE[locale] in part
    assert ("请于" if zh else "evidence due by") in asked.email.subject
    assert ("请于" if zh else "evidence due by") not in answered.email.subject


def test_fraud_chargebacks_do_not_mention_the_defect_rate() -> None:
    service = sample_event("chargeback.opened").typed()
    fraud = service.model_copy(update={"category": ChargebackCategory.FRAUD, "reason": "fraudulent"})
    [email] = plan(dispute_event("chargeback.opened", fraud))
    assert "order defect rate" not in email.email.text
    assert "The cardholder says they did not make the payment" in email.email.text
    [email] = plan(dispute_event("chargeback.opened", service))
    assert "order defect rate" in email.email.text


@pytest.mark.parametrize(
    ("currency", "marketplace", "amount", "expected"),
    [
        ("JPY", "JP", 1500, {"en": "¥1,500", "zh-CN": "JP¥1,500"}),
        ("BHD", "BH", 1250, {"en": "BHD1.250", "zh-CN": "BHD1.250"}),
        ("EUR", "DE", 5549, {"en": "€55.49", "zh-CN": "€55.49"}),
    ],
)
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_dispute_amounts_in_their_currency(
    currency: str, marketplace: str, amount: int, expected: dict[str, str], locale: str
) -> None:
    money = Money(amount=amount, currency=currency)
    claim = sample_event("claim.granted", locale=locale).typed()
    payment = claim.payment.model_copy(update={"amount": money})
    decision = claim.decision.model_copy(update={"amount": money})
    changed = claim.model_copy(
        update={
            "currency": currency,
            "marketplace": marketplace,
            "amount": money,
            "payment": payment,
            "decision": decision,
        }
    )
    chargeback = sample_event("chargeback.lost", locale=locale).typed()
    emails = [
        *plan(dispute_event("claim.granted", changed)),
        *plan(dispute_event("chargeback.lost", chargeback.model_copy(update={"amount": money}))),
    ]
    assert len(emails) == 3
    for email in emails:
        assert expected[locale] in email.email.subject
        assert expected[locale] in email.email.text and expected[locale] in email.email.html


def test_claim_deadlines_in_each_readers_own_zone_and_language() -> None:
    claim = sample_event("claim.filed").typed()
    buyer_party = claim.buyer.model_copy(update={"locale": "zh-CN", "timezone": "Asia/Shanghai"})
    buyer, seller = plan(dispute_event("claim.filed", claim.model_copy(update={"buyer": buyer_party})))
    assert buyer.email.locale == "zh-CN" and seller.email.locale == "en"
    assert "2025年3月6日星期四 23:00 中国标准时间" in buyer.email.text
    assert RESPOND_BY["en"] in seller.email.text


def test_a_buyers_claim_note_is_escaped_in_html_and_kept_in_text() -> None:
    hostile = '<script>alert("x")</script>'
    claim = sample_event("claim.filed").typed().model_copy(update={"note": hostile})
    _, seller = plan(dispute_event("claim.filed", claim))
    assert hostile in seller.email.text
    assert "<script>" not in seller.email.html and "&lt;script&gt;" in seller.email.html


def test_dispute_events_that_send_nothing() -> None:
    assert plan(sample_event("claim.closed")) == []  # paid: the refund's own email told the buyer
    assert plan(sample_event("chargeback.opened", no_seller=True)) == []
    assert plan(sample_event("chargeback.won", no_seller=True)) == []


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_claims_refund_is_told_as_the_claims_with_only_its_total(locale: str) -> None:
    # As the refunds service pays a claim: kind `claim`, no return, the whole amount booked as
    # `other_concession` (not the seller's goodwill), `automatic` when the claim was granted at its deadline.
    refund = sample_event("refund.issued", locale=locale, direct=True).typed()
    amount, zero = Money(amount=5549, currency="USD"), Money(amount=0, currency="USD")
    breakdown = refund.breakdown.model_copy(
        update={"items": zero, "outbound_shipping": zero, "other_concession": amount, "total": amount}
    )
    claim_refund = refund.model_copy(
        update={
            "refund_id": "rf_clm_sample1",
            "kind": RefundKind.CLAIM,
            "claim_id": "clm_sample1",
            "automatic": True,
            "due_at": None,
            "breakdown": breakdown,
            "amount": amount,
        }
    )
    event = new_event(
        "refund.issued", service="refunds", subject="rf_clm_sample1", data=claim_refund, sequence=2, time=AT
    )
    buyer, seller = plan(event)
    assert (buyer.template, seller.template) == ("buyer/refunded", "seller/auto_refunded")
    zh = locale == "zh-CN"
    for email in (buyer, seller):
        for part in (email.email.text, email.email.html):
            assert "clm_sample1" in part and TOTAL[locale] in part
            assert ("交易保障索赔" if zh else "A-to-z claim") in part
            assert ("卖家额外补偿" if zh else "Goodwill") not in part
            assert ("退货商品金额" if zh else "Items returned") not in part
