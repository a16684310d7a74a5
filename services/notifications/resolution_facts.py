"""The facts of a return's resolution (keep-it offers, replacements, store credit), for its reader.

Like facts.py: templates only place these strings. `resolution_facts` adds to every return's facts
(an item-received email must know whether a replacement, not a refund, follows); `store_credit_facts`
serves the store credit entry of `store_credit.granted`.
"""

from __future__ import annotations

from typing import Any

from services.notifications.facts import Reader
from shared.models import RefundDestination, Return
from shared.resolution_models import Offer, StoreCreditEntry


def _offer(offer: Offer, reader: Reader) -> dict[str, Any]:
    return {
        "offer_id": offer.offer_id,
        "amount": reader.money(offer.amount),
        "status": str(offer.status),
        "by_agent": offer.made_by.role == "agent",
        "made_at": reader.when(offer.made_at),
        "expires_at": reader.when(offer.expires_at),
        "expires_day": reader.day(offer.expires_at),
        "decided_at": reader.when(offer.decided_at),
        "note": offer.note or "",
    }


def resolution_facts(ret: Return, reader: Reader) -> dict[str, Any]:
    # The offer an offer event is about is the newest: at most one is open, and a new one can be
    # made only after it was decided (the event's data is the return as of that event).
    offer = ret.offers[-1] if ret.offers else None
    facts: dict[str, Any] = {
        "replacing": ret.replacing(),
        "to_store_credit": ret.refund_to == RefundDestination.STORE_CREDIT,
        "refund_to_text": reader.label("refund_destination", ret.refund_to),  # "your store credit"
        "offer": None if offer is None else _offer(offer, reader),
        "replacement": None,
    }
    if (replacement := ret.replacement) is not None:
        titles = {line.line_id: line.title for line in ret.lines}
        facts["replacement"] = {
            "status": str(replacement.status),
            "lines": [
                {"title": titles.get(line.line_id, line.sku), "sku": line.sku, "quantity": line.quantity}
                for line in replacement.lines
            ],
            "carrier": replacement.carrier or "",
            "tracking_number": replacement.tracking_number or "",
            "shipped_at": reader.when(replacement.shipped_at),
            "note": replacement.note or "",
        }
    return facts


def store_credit_facts(entry: StoreCreditEntry, reader: Reader) -> dict[str, Any]:
    # A bonus of zero is no bonus: the marketplace's percent is 0 unless configured.
    bonus = entry.bonus if entry.bonus is not None and entry.bonus.amount else None
    return {
        "name": reader.party.name,
        "entry_id": entry.entry_id,
        "return_id": entry.return_id or "",
        "refund_id": entry.refund_id or "",
        "order_id": entry.order_id or "",
        "amount": reader.money(entry.amount),
        "refunded": reader.money(entry.amount - bonus) if bonus else reader.money(entry.amount),
        "bonus": reader.money(bonus),
        "balance": reader.money(entry.balance),
        "at": reader.when(entry.at),
    }
