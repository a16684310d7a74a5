"""Sample keep-it offers, replacements and store credit grants for template previews and tests, as
the returns and refunds services publish them (tools/resolution_examples.py is the contract's own).

samples.sample_data dispatches `return.offer_*`, `return.replacement*`, `return.replaced` and
`store_credit.*` here; `store_credit` (options) makes a return's refund go to store credit.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.notifications.samples import AT, money, party, sample_authorization, sample_return
from shared.models import Return
from shared.resolution_models import StoreCreditEntry

OFFER_ID = "ofr_sample1"
OFFER_MADE = AT + timedelta(days=1)  # Tuesday 4 March 2025, 15:00 UTC
OFFER_EXPIRES = OFFER_MADE + timedelta(hours=72)


def sample_offer(status: str = "open", **changes: Any) -> dict[str, Any]:
    offer = {
        "offer_id": OFFER_ID,
        "amount": money(1500),
        "status": status,
        "made_by": {"role": "seller", "id": "s-1"},
        "made_at": OFFER_MADE,
        "expires_at": OFFER_EXPIRES,
        "decided_at": None if status == "open" else OFFER_MADE + timedelta(hours=5),
        "note": "Keep the kettle: we refund $15.00 for the trouble",
    }
    return offer | changes


def sample_replacement(status: str, **changes: Any) -> dict[str, Any]:
    shipped = status == "shipped"
    replacement = {
        "status": status,
        "ships": "at_receipt",
        "lines": [{"line_id": "l1", "sku": "SKU-KETTLE-RED", "quantity": 1}],
        "ordered_at": None if status == "requested" else AT + timedelta(days=4),
        "shipped_at": AT + timedelta(days=5) if shipped else None,
        "unavailable_at": AT + timedelta(days=5) if status == "unavailable" else None,
        "carrier": "FedEx" if shipped else None,
        "tracking_number": "794612345678" if shipped else None,
        "note": "Out of stock until next season" if status == "unavailable" else None,
    }
    return replacement | changes


def _received() -> dict[str, Any]:
    return {
        "authorization": sample_authorization(),
        "received_at": AT + timedelta(days=4),
        "receipt": {"lines": [{"line_id": "l1", "quantity": 1, "condition": "opened", "disposition": "refurbish"}]},
    }


def sample_resolution_return(event_type: str, *, locale: str = "en", **options: Any) -> Return:
    authorized = {"authorization": sample_authorization(), "authorized_at": AT + timedelta(hours=3)}
    refund_to = {"refund_to": "store_credit"} if options.get("store_credit") else {}
    replacing = {"resolution": "replacement"}
    by_type: dict[str, dict[str, Any]] = {
        "return.offer_made": {"status": "authorized", **authorized, "offers": [sample_offer()]},
        "return.offer_accepted": {
            "status": "authorized",
            **authorized,
            "offers": [sample_offer("accepted")],
            "settlement": {"kept_item": True, "offer_id": OFFER_ID, "amount": money(1500)},
        },
        "return.offer_declined": {"status": "authorized", **authorized, "offers": [sample_offer("declined")]},
        "return.offer_expired": {
            "status": "authorized",
            **authorized,
            "offers": [sample_offer("expired", decided_at=OFFER_EXPIRES)],
        },
        "return.replacement_ordered": {
            "status": "received",
            **replacing,
            **_received(),
            "replacement": sample_replacement("ordered"),
        },
        "return.replacement_shipped": {
            "status": "received",
            **replacing,
            **_received(),
            "replacement": sample_replacement("shipped"),
        },
        "return.replacement_unavailable": {
            "status": "received",
            **replacing,
            **_received(),
            "replacement": sample_replacement("unavailable"),
            "refund_due_at": AT + timedelta(days=7),
        },
        "return.replaced": {
            "status": "replaced",
            **replacing,
            **_received(),
            "replacement": sample_replacement("shipped"),
            "replaced_at": AT + timedelta(days=5),
        },
    }
    return sample_return(locale=locale, timezone=options.get("timezone"), version=4, **refund_to, **by_type[event_type])


def sample_store_credit(
    event_type: str = "store_credit.granted", *, locale: str = "en", **options: Any
) -> StoreCreditEntry:
    """A grant paying rf_sample1 with a 5 % bonus (`bonus=False`: none); a debit of a checkout."""
    buyer = party("buyer", locale, options.get("timezone"))
    if event_type == "store_credit.debited":
        data: dict[str, Any] = {
            "entry_id": "scd_sample1",
            "kind": "debit",
            "buyer_id": buyer["id"],
            "amount": money(2500),
            "balance": money(5326),
            "reference": "checkout-77",
            "actor": {"role": "service", "id": "checkout"},
            "at": AT + timedelta(days=8),
        }
        return StoreCreditEntry.model_validate(data)
    bonus = options.get("bonus", True)
    data = {
        "entry_id": "scg_rf_sample1",
        "kind": "grant",
        "buyer_id": buyer["id"],
        "buyer": buyer,
        "seller_id": "s-1",
        "amount": money(5826 if bonus else 5549),
        "bonus": money(277) if bonus else None,
        "balance": money(7826 if bonus else 7549),
        "refund_id": "rf_sample1",
        "return_id": "ret_sample1",
        "order_id": "ord-1001",
        "actor": {"role": "platform", "id": "refunds"},
        "at": AT + timedelta(days=6),
    }
    return StoreCreditEntry.model_validate(data)


def sample_resolution(event_type: str, *, locale: str = "en", **options: Any) -> Return | StoreCreditEntry:
    if event_type.startswith("store_credit."):
        return sample_store_credit(event_type, locale=locale, **options)
    return sample_resolution_return(event_type, locale=locale, **options)
