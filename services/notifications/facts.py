"""The facts an email states, formatted for its reader: amounts in their locale, times in their zone.

Templates only place these strings; every decision about formatting is made here, in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, get_timezone_name

from services.notifications.labels import label
from shared import marketplaces
from shared.calendar import marketplace_zone
from shared.models import Party, Refund, RefundDestination, RefundKind, Return
from shared.money import Money, format_money

TEMPLATE_LOCALES = ("en", "zh-CN", "de", "ja")
DEFAULT_LOCALE = "en"
_TEMPLATES_DIR = Path(__file__).parent / "templates"
# A listed locale whose template folder is not there (a language still being translated) is not
# offered: its readers get English rather than an email with the wrong language tag.
SHIPPED_LOCALES = tuple(name for name in TEMPLATE_LOCALES if (_TEMPLATES_DIR / name).is_dir())


def template_locale(requested: str | None, offered: tuple[str, ...] = SHIPPED_LOCALES) -> str:
    """The template set for a party's locale: exact match, then same language (de-AT -> de), then English."""
    wanted = (requested or "").replace("_", "-").lower()
    for candidate in offered:
        if candidate.lower() == wanted:
            return candidate
    language = wanted.split("-")[0]
    for candidate in offered:
        if candidate.split("-")[0].lower() == language:
            return candidate
    return DEFAULT_LOCALE


@lru_cache(maxsize=64)
def babel_locale(name: str) -> Locale:
    """Parsed once per name: Locale.parse is not cached by Babel, and every date in every email needs one."""
    return Locale.parse(name)


def _writes(template: str, requested: str | None) -> bool:
    """Whether dates and amounts may follow the party's own locale in an email of `template`'s
    language: en-GB in English, de-AT in German; but a French reader of the English fallback gets
    English dates, and zh-TW (Traditional script) those of the zh-CN (Simplified) templates."""
    wanted = (requested or "").replace("_", "-").lower()
    if "-" in template:  # a language written in one script and region here: that one only
        return wanted == template.lower()
    return wanted.split("-")[0] == template.lower()


@lru_cache(maxsize=256)
def format_locale(requested: str | None, fallback: str) -> str:
    """The locale numbers and dates are written in: the party's own if Babel knows it (en-GB)."""
    for name in (requested, fallback):
        if not name:
            continue
        try:
            babel_locale(name.replace("-", "_"))
            return name.replace("-", "_")
        except (ValueError, UnknownLocaleError):
            continue
    return DEFAULT_LOCALE


def reader_zone(party: Party, marketplace: str) -> ZoneInfo:
    if party.timezone:
        try:
            return ZoneInfo(party.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # a zone we don't know must not stop the email: use the marketplace's
    return marketplace_zone(marketplace)


@dataclass(frozen=True)
class Reader:
    """Who reads the email and how they read: template set, number/date locale, time zone."""

    role: str
    party: Party
    locale: str
    number_locale: str
    zone: ZoneInfo

    @classmethod
    def of(cls, role: str, party: Party, marketplace: str) -> Reader:
        locale = template_locale(party.locale)
        own = party.locale if _writes(locale, party.locale) else None
        return cls(role, party, locale, format_locale(own, locale), reader_zone(party, marketplace))

    def money(self, money: Money | None) -> str:
        return _money(money, self.number_locale) if money is not None else ""

    def when(self, at: datetime | None) -> str:
        """`Thursday, March 6, 2025, 7:59 AM China Standard Time` in the reader's zone and locale."""
        return "" if at is None else _long_time(at, self.zone, self.number_locale)

    def day(self, at: datetime | None) -> str:
        """`March 6, 2025` (the reader's local date): short enough for a subject line."""
        return "" if at is None else _long_day(at, self.zone, self.number_locale)

    def label(self, kind: str, code: Any) -> str:
        return label(self.locale, kind, None if code is None else str(code))


# A return's few instants are written in every email of its lifecycle, for both readers: Babel's
# formatting is the costly part of the facts, so each (instant, zone, locale) is formatted once.
@lru_cache(maxsize=4096)
def _long_time(at: datetime, zone: ZoneInfo, number_locale: str) -> str:
    local = at.astimezone(zone)
    locale = babel_locale(number_locale)
    time_text = f"{format_time(local, 'short', locale=locale)} {get_timezone_name(local, 'long', locale=locale)}"
    date_text = format_date(local, "full", locale=locale)
    return locale.datetime_formats["full"].format(time_text, date_text)


@lru_cache(maxsize=4096)
def _money(money: Money, number_locale: str) -> str:
    # Money is frozen (hashable by value); a return's amounts recur in every email of its lifecycle.
    return format_money(money, number_locale)


@lru_cache(maxsize=4096)
def _long_day(at: datetime, zone: ZoneInfo, number_locale: str) -> str:
    return format_date(at.astimezone(zone), "long", locale=babel_locale(number_locale))


def _refund_business_days(code: str) -> int:
    """The marketplace's refund deadline, in business days after receipt (2 where it is unknown here)."""
    profile = marketplaces.current().get(code)
    return 2 if profile is None else profile.returns.refund_business_days


def return_facts(ret: Return, reader: Reader) -> dict[str, Any]:
    items = [
        {
            "title": line.title,
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price": reader.money(line.unit_price),
            "subtotal": reader.money(line.unit_price.times(line.quantity)),
            "reason": reader.label("reason", line.reason_code),
            "comment": line.comment or "",
        }
        for line in ret.lines
    ]
    value = sum((line.unit_price.times(line.quantity) for line in ret.lines), Money.zero(ret.currency))
    ship_by = ret.ship_by or (ret.authorization.ship_by if ret.authorization else None)
    titles = {line.line_id: line.title for line in ret.lines}
    facts: dict[str, Any] = {
        "name": reader.party.name,
        "return_id": ret.return_id,
        "order_id": ret.order_id,
        "items": items,
        "items_value": reader.money(value),
        "status": str(ret.status),
        "requested_at": reader.when(ret.created_at),
        "response_due": reader.when(ret.response_due_at),
        "ship_by": reader.when(ship_by),
        "received_at": reader.when(ret.received_at),
        "refund_due": reader.when(ret.refund_due_at),
        "response_due_day": reader.day(ret.response_due_at),
        "ship_by_day": reader.day(ship_by),
        "refund_due_day": reader.day(ret.refund_due_at),
        "refund_mode": ret.policy.refund_mode,
        "auto_authorize": ret.policy.auto_authorize,
        "refund_business_days": _refund_business_days(ret.marketplace),
        "in_policy": ret.in_policy,
        "authorization": None,
        "rejection": None,
        "closure": None,
        "shipment": None,
        "received_items": [],
    }
    if (auth := ret.authorization) is not None:
        paid_by_kind = "paid_by" if reader.role == "buyer" else "paid_by_seller_view"
        facts["authorization"] = {
            "returnless": auth.returnless,
            "automatic": auth.automatic,
            "late": auth.late,
            "label_type": str(auth.label_type) if auth.label_type else "",
            "label_type_text": reader.label("label_type", auth.label_type),
            "paid_by": str(auth.return_shipping_paid_by),
            "paid_by_text": reader.label(paid_by_kind, auth.return_shipping_paid_by),
            "carrier": auth.carrier or "",
            "tracking_number": auth.tracking_number or "",
            "label_url": auth.label_url or "",
            "instructions": auth.instructions or "",
            "return_postage": reader.money(auth.return_postage),
        }
    if (rejection := ret.rejection) is not None:
        reason = reader.label("rejection_reason", rejection.reason_code)
        facts["rejection"] = {"reason": reason, "note": rejection.note or ""}
    if (closure := ret.closure) is not None:
        closed = {"code": closure.code, "reason": reader.label("closure", closure.code), "note": closure.note or ""}
        facts["closure"] = closed
    if (shipment := ret.shipment) is not None:
        facts["shipment"] = {"carrier": shipment.carrier, "tracking_number": shipment.tracking_number}
    if ret.receipt is not None:
        facts["received_items"] = [
            {
                "title": titles.get(line.line_id, line.line_id),
                "quantity": line.quantity,
                "condition": reader.label("condition", line.condition),
            }
            for line in ret.receipt.lines
        ]
    return facts


def refund_facts(refund: Refund, reader: Reader) -> dict[str, Any]:
    b = refund.breakdown
    # Zero components are left out so a plain refund reads as "items ... total".
    adjustments = [
        (key, sign, reader.money(money))
        for key, sign, money in (
            ("restocking_fee", "-", b.restocking_fee),
            ("outbound_shipping", "+", b.outbound_shipping),
            ("return_shipping_concession", "+", b.return_shipping_concession),
            ("other_concession", "+", b.other_concession),
        )
        if money.amount
    ]
    return {
        "name": reader.party.name,
        "refund_id": refund.refund_id,
        "return_id": refund.return_id or "",
        "claim_id": refund.claim_id or "",  # kind `claim`: one amount, told as the claim's refund
        # A claim's or a keep-it offer's refund is one agreed amount (booked as other_concession): no lines.
        "only_total": refund.kind in (RefundKind.CLAIM, RefundKind.OFFER) or refund.claim_id is not None,
        "order_id": refund.order_id,
        "kind": str(refund.kind),
        "automatic": refund.automatic,
        "amount": reader.money(refund.amount),
        # Credited to the buyer's store credit (with the marketplace's bonus on top, if any), not the card.
        "to_store_credit": refund.destination == RefundDestination.STORE_CREDIT,
        "store_credit_bonus": reader.money(bonus) if (bonus := refund.store_credit_bonus) and bonus.amount else "",
        "breakdown": {
            "items_amount": reader.money(b.items),
            "total": reader.money(b.total),
            # Paid by the return-shipping insurer, not in the total: its own line after it ("" : none).
            "insured_return_shipping": reader.money(ins) if (ins := b.insured_return_shipping) and ins.amount else "",
            "adjustments": [
                {"key": key, "label": reader.label("breakdown", key), "sign": sign, "amount": amount}
                for key, sign, amount in adjustments
            ],
        },
        "received_at": reader.when(refund.received_at),
        "due_at": reader.when(refund.due_at),
        "issued_at": reader.when(refund.issued_at),
    }
