"""Stripe webhook signatures (the official SDK's check) and how evidence is put in Stripe's fields."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from services.disputes.chargebacks.stripe_disputes import BadDelivery, stripe_evidence, verify
from shared.dispute_models import Evidence

SECRET = "whsec_unit_secret"
BODY = json.dumps(
    {"id": "evt_1", "object": "event", "type": "charge.dispute.created", "data": {"object": {"id": "dp_1"}}}
).encode()


def signed(body: bytes = BODY, secret: str = SECRET, at: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=at or int(time.time()))


def reason(body: bytes, header: str | None) -> str:
    with pytest.raises(BadDelivery) as refused:
        verify(body, header, SECRET, tolerance_s=300)
    return refused.value.reason


def test_a_fresh_signed_delivery_is_read():
    at = int(time.time()) - 10
    delivery = verify(BODY, signed(at=at), SECRET, tolerance_s=300)
    assert (delivery.event_id, delivery.event_type, delivery.signed_at) == ("evt_1", "charge.dispute.created", at)
    assert delivery.object == {"id": "dp_1"}


def test_unsigned_badly_signed_and_old_deliveries_are_refused_with_their_reason():
    assert reason(BODY, None) == "unsigned"
    assert reason(BODY, "") == "unsigned"
    assert reason(BODY, signed(secret="whsec_someone_else")) == "bad_signature"
    assert reason(BODY.replace(b"dp_1", b"dp_2"), signed()) == "bad_signature"  # body changed after signing
    assert reason(BODY, "t=abc,v1=00") == "bad_signature"
    assert reason(BODY, signed(at=int(time.time()) - 301)) == "too_old"
    for not_an_event in (b'{"hello": 1}', b"[1]", b"nope", b'{"id": "evt_1", "object": "event", "data": 1}'):
        assert reason(not_an_event, signed(not_an_event)) == "malformed"


def test_evidence_goes_in_stripe_s_fields():
    full = Evidence(carrier="UPS", tracking_number="1Z9", refund_reference="rf_1", text="Refunded.")
    assert stripe_evidence(full) == {
        "shipping_carrier": "UPS",
        "shipping_tracking_number": "1Z9",
        "uncategorized_text": "Refunded.\nRefund: rf_1",
    }
    assert stripe_evidence(Evidence(refund_reference="rf_1")) == {"uncategorized_text": "Refund: rf_1"}
