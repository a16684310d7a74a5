"""Reading an email: the recipient's locale, currency formatting and time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.notifications.facts import (
    SHIPPED_LOCALES,
    TEMPLATE_LOCALES,
    Reader,
    format_locale,
    template_locale,
)
from shared.models import Party
from shared.money import Money


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("en", "en"),
        ("en-US", "en"),
        ("en_GB", "en"),
        ("zh-CN", "zh-CN"),
        ("zh_cn", "zh-CN"),
        ("zh", "zh-CN"),
        ("de", "de"),
        ("de-AT", "de"),
        ("de_DE", "de"),
        ("fr-FR", "en"),
        ("", "en"),
        (None, "en"),
        ("!!", "en"),
    ],
)
def test_template_locale_falls_back_to_english(requested: str | None, expected: str) -> None:
    assert template_locale(requested) == expected


def test_japanese_is_offered_once_its_templates_ship() -> None:
    assert "ja" in TEMPLATE_LOCALES and "de" in SHIPPED_LOCALES
    assert template_locale("ja-JP", offered=TEMPLATE_LOCALES) == "ja"
    # Listed but its folder not there (yet): English, not an email tagged ja in English.
    assert template_locale("ja-JP", offered=("en", "zh-CN", "de")) == "en"
    assert template_locale("ja-JP") == ("ja" if "ja" in SHIPPED_LOCALES else "en")


def test_german_reader() -> None:
    reader = Reader.of("buyer", party(locale="de-DE"), "DE")
    at = datetime(2025, 3, 5, 23, 30, tzinfo=UTC)
    assert reader.locale == "de"
    assert reader.when(at) == "Donnerstag, 6. März 2025, 00:30 Mitteleuropäische Normalzeit"
    assert reader.day(at) == "6. März 2025"
    assert reader.money(Money(amount=1999, currency="EUR")) == "19,99\xa0€"
    assert reader.label("reason", "DEFECTIVE") == "Defekt"


def test_numbers_follow_the_party_locale_when_babel_knows_it() -> None:
    assert format_locale("en-GB", "en") == "en_GB"
    assert format_locale("xx-YY", "zh-CN") == "zh_CN"


@pytest.mark.parametrize(
    ("locale", "template", "day"),
    [
        ("en-GB", "en", "6 March 2025"),  # the reader's own English
        ("de-AT", "de", "6. März 2025"),
        ("fr-FR", "en", "March 6, 2025"),  # no French emails: English, dates included
        ("zh-TW", "zh-CN", "2025年3月6日"),  # Simplified templates, Simplified dates
        ("pt-BR", "en", "March 6, 2025"),
    ],
)
def test_dates_are_in_the_emails_language(locale: str, template: str, day: str) -> None:
    reader = Reader.of("buyer", party(locale=locale), "DE")
    at = datetime(2025, 3, 5, 23, 30, tzinfo=UTC)
    assert reader.locale == template and reader.day(at) == day
    if template == "en":
        assert "mars" not in reader.when(at) and "março" not in reader.when(at)


def party(locale: str = "en", timezone: str | None = None) -> Party:
    return Party(id="b-1", name="Ada", email="ada@example.com", locale=locale, timezone=timezone)


def test_deadline_in_the_recipients_zone() -> None:
    reader = Reader.of("buyer", party(timezone="Asia/Shanghai"), "US")
    at = datetime(2025, 3, 5, 23, 30, tzinfo=UTC)
    assert reader.when(at) == "Thursday, March 6, 2025, 7:30\u202fAM China Standard Time"
    assert reader.day(at) == "March 6, 2025"


def test_deadline_falls_back_to_the_marketplace_zone() -> None:
    at = datetime(2025, 3, 5, 23, 30, tzinfo=UTC)
    assert "Eastern Standard Time" in Reader.of("buyer", party(), "US").when(at)
    assert "Wednesday, March 5" in Reader.of("buyer", party(timezone="Not/AZone"), "US").when(at)
    assert "Japan Standard Time" in Reader.of("buyer", party(), "JP").when(at)


def test_chinese_reader() -> None:
    reader = Reader.of("buyer", party(locale="zh-CN", timezone="Asia/Shanghai"), "CN")
    at = datetime(2025, 3, 5, 23, 30, tzinfo=UTC)
    assert reader.locale == "zh-CN"
    assert reader.when(at) == "2025年3月6日星期四 07:30 中国标准时间"
    assert reader.money(Money(amount=1999, currency="CNY")) == "¥19.99"
    assert reader.label("reason", "DEFECTIVE") == "商品有缺陷"


@pytest.mark.parametrize(
    ("money", "expected"),
    [
        (Money(amount=1999, currency="USD"), "$19.99"),
        (Money(amount=1500, currency="JPY"), "¥1,500"),
        (Money(amount=1250, currency="BHD"), "BHD1.250"),
    ],
)
def test_amounts_in_their_currency(money: Money, expected: str) -> None:
    assert Reader.of("buyer", party(), "US").money(money) == expected


def test_unknown_codes_are_shown_as_themselves() -> None:
    assert Reader.of("buyer", party(), "US").label("reason", "NEW_REASON") == "NEW_REASON"
