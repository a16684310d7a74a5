"""Realistic sample events for template previews and tests: one per event type, any locale.

`sample_event("return.authorized", locale="zh-CN")` gives a CloudEvent as the producers publish it;
claims and chargebacks come from dispute_samples.py, offers, replacements and store credit from
resolution_samples.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.dispute_models import Chargeback, Claim
from shared.events import CloudEvent, new_event
from shared.models import Refund, Return
from shared.resolution_models import StoreCreditEntry

AT = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)  # a Monday


def party(role: str, locale: str, timezone: str | None) -> dict[str, Any]:
    party: dict[str, Any] = {
        "id": f"{role[0]}-1",
        "name": "Ada Buyer" if role == "buyer" else "Acme Goods",
        "email": f"{role}@example.com",
        "locale": locale,
        "timezone": timezone,
    }
    if role == "seller":
        party["return_address"] = {"line1": "1 Dock St", "city": "Newark", "postal_code": "07102", "country": "US"}
    return party


def money(amount: int, currency: str = "USD") -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def sample_return(
    status: str = "requested",
    *,
    locale: str = "en",
    timezone: str | None = None,
    seller_locale: str | None = None,
    **changes: Any,
) -> Return:
    data: dict[str, Any] = {
        "return_id": "ret_sample1",
        "order_id": "ord-1001",
        "marketplace": "US",
        "currency": "USD",
        "status": status,
        "version": 1,
        "buyer": party("buyer", locale, timezone),
        "seller": party("seller", seller_locale or locale, timezone),
        "lines": [
            {
                "line_id": "l1",
                "sku": "SKU-KETTLE",
                "title": "Electric kettle",
                "category": "kitchen",
                "unit_price": money(4999),
                "quantity": 1,
                "reason_code": "DEFECTIVE",
                "fault": "seller",
                "comment": "Does not heat",
            }
        ],
        "fault": "seller",
        "in_policy": True,
        "whole_order": True,
        "policy": {"refund_mode": "manual", "restocking_fee_percent": "0"},
        "created_at": AT,
        "updated_at": AT,
        "response_due_at": AT + timedelta(hours=48),
    }
    data.update(changes)
    return Return.model_validate(data)


def sample_authorization(**changes: Any) -> dict[str, Any]:
    auth = {
        "label_type": "prepaid",
        "carrier": "UPS",
        "tracking_number": "1Z999AA10123456784",
        "label_url": "https://labels.example/ret_sample1.pdf",
        "return_shipping_paid_by": "seller",
        "instructions": "Include the power cord",
        "ship_by": AT + timedelta(days=30),
    }
    auth.update(changes)
    return auth


def sample_refund(
    *,
    locale: str = "en",
    timezone: str | None = None,
    return_id: str | None = "ret_sample1",
    automatic: bool = False,
    status: str = "issued",
    **changes: Any,
) -> Refund:
    data: dict[str, Any] = {
        "refund_id": "rf_sample1",
        "kind": "return" if return_id else "direct",
        "return_id": return_id,
        "order_id": "ord-1001",
        "marketplace": "US",
        "currency": "USD",
        "buyer": party("buyer", locale, timezone),
        "seller": party("seller", locale, timezone),
        "status": status,
        "version": 2,
        "amount": money(5549),
        "breakdown": {
            "lines": [],
            "items": money(4999),
            "restocking_fee": money(0),
            "outbound_shipping": money(550),
            "return_shipping_concession": money(0),
            "other_concession": money(0),
            "total": money(5549),
        },
        "automatic": automatic,
        "actor": {"role": "platform" if automatic else "seller", "id": "s-1"},
        "received_at": AT + timedelta(days=5),
        "due_at": AT + timedelta(days=7),
        "issued_at": AT + timedelta(days=6),
        "created_at": AT,
        "updated_at": AT,
    }
    data.update(changes)
    return Refund.model_validate(data)


def sample_data(
    event_type: str, *, locale: str = "en", **options: Any
) -> Return | Refund | Claim | Chargeback | StoreCreditEntry:
    """The data a typical `event_type` carries (`late`, `returnless`, `automatic`, `direct` vary it;
    `already_refunded`, `no_seller` the disputes' ones; `store_credit` sends a refund to store
    credit, `replacing` makes a received return one asking for a replacement)."""
    if event_type.startswith(("claim.", "chargeback.")):
        from services.notifications.dispute_samples import sample_dispute  # it builds on this module

        return sample_dispute(event_type, locale=locale, **options)
    if event_type.startswith(("return.offer_", "return.replace", "store_credit.")):
        from services.notifications.resolution_samples import sample_resolution  # it builds on this module

        return sample_resolution(event_type, locale=locale, **options)
    later = AT + timedelta(days=1)
    if event_type in ("return.refunded", "refund.issued", "refund.failed"):
        to_store_credit: dict[str, Any] = {"destination": "store_credit", "store_credit_bonus": money(277)}
        return sample_refund(
            locale=locale,
            automatic=options.get("automatic", False),
            return_id=None if options.get("direct") else "ret_sample1",
            status="failed" if event_type == "refund.failed" else "issued",
            **(to_store_credit if options.get("store_credit") else {}),
        )
    auth = sample_authorization(
        **(
            {
                "label_type": None,
                "carrier": None,
                "tracking_number": None,
                "label_url": None,
                "instructions": None,
                "ship_by": None,
                "returnless": True,
            }
            if options.get("returnless")
            else {}
        ),
        late=options.get("late", False),
        # At the deadline (late), or at once by the seller's auto-authorization or returnless threshold.
        automatic=options.get("late", False) or options.get("automatic", False),
    )
    by_type: dict[str, dict[str, Any]] = {
        "return.created": {},
        "seller.response_due_soon": {},
        "return.authorized": {
            "status": "authorized",
            "authorization": auth,
            "authorized_at": later,
            "ship_by": auth["ship_by"],
        },
        "return.rejected": {
            "status": "rejected",
            "rejected_at": later,
            "rejection": {"reason_code": "OUTSIDE_RETURN_WINDOW", "note": "Item was used", "invalid": False},
        },
        "return.closed": {
            "status": "closed",
            "closed_at": later,
            "closure": {"code": "BUYER_WITHDREW", "note": "Buyer kept the item"},
        },
        "return.expired": {
            "status": "expired",
            "authorization": auth,
            "ship_by": auth["ship_by"],
            "expired_at": AT + timedelta(days=31),
        },
        "return.shipped": {
            "status": "shipped",
            "authorization": auth,
            "shipped_at": later,
            "shipment": {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"},
        },
        "return.received": {
            "status": "received",
            "authorization": auth,
            "received_at": later,
            "refund_due_at": AT + timedelta(days=3, hours=8, minutes=59),
            "receipt": {"lines": [{"line_id": "l1", "quantity": 1, "condition": "opened"}]},
        },
        "return.feedback_received": {"status": "refunded"},
    }
    changes = by_type[event_type] | ({"refund_to": "store_credit"} if options.get("store_credit") else {})
    if options.get("replacing"):
        replacement = {
            "status": "ordered",
            "ships": "at_receipt",
            "lines": [{"line_id": "l1", "sku": "SKU-KETTLE-RED", "quantity": 1}],
            "ordered_at": later,
        }
        changes |= {"resolution": "replacement", "replacement": replacement}
        changes.pop("refund_due_at", None)  # a replacing return has nothing to refund
    return sample_return(locale=locale, **changes)


def sample_event(event_type: str, *, locale: str = "en", event_id: str | None = None, **options: Any) -> CloudEvent:
    data = sample_data(event_type, locale=locale, **options)
    subject: str | None
    if isinstance(data, Claim):
        subject, service = data.claim_id, "disputes"
    elif isinstance(data, Chargeback):
        subject, service = data.chargeback_id, "disputes"
    elif isinstance(data, StoreCreditEntry):
        subject, service = data.buyer_id, "refunds"
    elif isinstance(data, Return) or event_type == "return.refunded":
        subject, service = data.return_id, "returns"
    else:
        subject, service = data.refund_id, "returns"
    return new_event(
        event_type,
        service=service,
        subject=subject or "",
        data=data,
        sequence=1 if isinstance(data, StoreCreditEntry) else data.version,  # an entry is written once
        time=AT,
        event_id=event_id or str(uuid.uuid4()),
    )
