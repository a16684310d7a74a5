"""Sample claims and chargebacks for template previews and tests, as the disputes service publishes them.

`sample_dispute("claim.granted", automatic=True)` gives the data of a claim the platform granted at
the seller's deadline; samples.sample_data dispatches `claim.*` and `chargeback.*` here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.notifications.samples import AT, money, party
from shared.dispute_models import Chargeback, Claim

CLAIM_ID = "clm_sample1"
CHARGEBACK_ID = "cbk_sample1"
PLATFORM = {"role": "platform", "id": "disputes"}
AGENT = {"role": "agent", "id": "agent-3"}


def sample_claim(event_type: str = "claim.filed", *, locale: str = "en", **options: Any) -> Claim:
    """`automatic`: granted at the deadline; `already_refunded`: closed with nothing left to pay."""
    later = AT + timedelta(days=2)
    decided = {"amount": money(5549), "actor": AGENT, "note": "Tracking shows no delivery", "at": later}
    if options.get("automatic"):
        note = "The seller did not respond in time."  # as disputes writes it
        decided |= {"automatic": True, "actor": PLATFORM, "note": note, "at": AT + timedelta(hours=72)}
    payment = {"refund_id": f"rf_{CLAIM_ID}", "amount": money(5549)}
    by_type: dict[str, dict[str, Any]] = {
        "claim.filed": {},
        "claim.response_due_soon": {"reminded": True},
        "claim.seller_responded": {"status": "paying", "payment": payment},
        "claim.granted": {"status": "paying", "decision": {"outcome": "granted", **decided}, "payment": payment},
        "claim.denied": {
            "status": "denied",
            "decision": {
                "outcome": "denied",
                "actor": AGENT,
                "note": "Tracking shows delivery at the door",
                "at": later,
            },
        },
        "claim.withdrawn": {"status": "withdrawn"},
        "claim.closed": {
            "status": "closed",
            "decision": {"outcome": "granted", **decided},
            "payment": payment if options.get("already_refunded") else {**payment, "paid": money(5549)},
            "closure": {"code": "already_refunded" if options.get("already_refunded") else "paid", "at": later},
        },
    }
    data: dict[str, Any] = {
        "claim_id": CLAIM_ID,
        "order_id": "ord-1001",
        "marketplace": "US",
        "currency": "USD",
        "buyer": party("buyer", locale, options.get("timezone")),
        "seller": party("seller", options.get("seller_locale") or locale, options.get("timezone")),
        "reason": "ITEM_NOT_RECEIVED",
        "amount": money(5549),
        "note": "The parcel never arrived",
        "status": "open",
        "version": 1,
        "filed_at": AT,
        "respond_by": AT + timedelta(hours=72),
        "created_at": AT,
        "updated_at": AT,
    }
    return Claim.model_validate(data | by_type[event_type])


def sample_chargeback(event_type: str = "chargeback.opened", *, locale: str = "en", **options: Any) -> Chargeback:
    """`automatic`: the platform answered with the refund (disputes publishes that as
    `chargeback.evidence_submitted`); `no_seller`: the payment matched no order."""
    data: dict[str, Any] = {
        "chargeback_id": CHARGEBACK_ID,
        "gateway": "stripe",
        "gateway_dispute_id": "dp_sample1",
        "payment_reference": "pi_sample1",
        "order_id": "ord-1001",
        "marketplace": "US",
        "buyer_id": "b-1",
        "seller": party("seller", locale, options.get("timezone")),
        "amount": money(5549),
        "reason": "product_not_received",
        "category": "service",
        "status": "needs_response",
        "version": 1,
        "evidence_due_by": AT + timedelta(days=7),
        "created_at": AT,
        "updated_at": AT,
    }
    if options.get("automatic"):
        evidence = {"refund_reference": "rf_sample1", "text": "Refunded in full before the dispute"}
        data |= {"automatic": True, "status": "under_review", "evidence": evidence, "submitted_at": AT}
    elif event_type == "chargeback.evidence_submitted":  # the seller's own
        evidence = {"carrier": "UPS", "tracking_number": "1Z999AA10123456784", "text": "Delivered"}
        data |= {"status": "under_review", "evidence": evidence, "submitted_at": AT + timedelta(days=1)}
    if options.get("no_seller"):
        data |= {"order_id": None, "marketplace": None, "buyer_id": None, "seller": None}
    if event_type in ("chargeback.won", "chargeback.lost"):
        data |= {"status": event_type.removeprefix("chargeback."), "closed_at": AT + timedelta(days=60)}
    return Chargeback.model_validate(data)


def sample_dispute(event_type: str, *, locale: str = "en", **options: Any) -> Claim | Chargeback:
    if event_type.startswith("claim."):
        return sample_claim(event_type, locale=locale, **options)
    return sample_chargeback(event_type, locale=locale, **options)
