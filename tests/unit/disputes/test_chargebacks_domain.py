"""The Chargeback aggregate: opening from a Stripe dispute, the platform's own evidence, submission, close."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.disputes.chargebacks import domain
from services.disputes.chargebacks.domain import Dispute, IllegalTransition, UnreadableDispute
from services.disputes.orders import OrderFacts, ReturnFacts
from shared.dispute_models import ChargebackCategory, ChargebackStatus, Evidence
from shared.models import Actor, ReturnStatus
from tests.unit.refunds.builders import make_order

NOW = datetime(2025, 8, 1, 12, 0, tzinfo=UTC)
SELLER = Actor(role="seller", id="s-1")


def dispute_object(**changes: Any) -> dict[str, Any]:
    """A Stripe `dispute` object as a webhook carries it (the fields we read)."""
    return {
        "id": "dp_1",
        "object": "dispute",
        "amount": 2599,
        "currency": "usd",
        "reason": "product_not_received",
        "status": "needs_response",
        "payment_intent": "pi_test_123",
        "charge": "ch_test_123",
        "evidence_details": {"due_by": int((NOW + timedelta(days=10)).timestamp()), "submission_count": 0},
        **changes,
    }


def facts(refunds: dict[str, int] | None = None) -> OrderFacts:
    order = make_order(order_id="o-1", lines=[("L1", 1, 2000)], shipping=599)
    refunds = refunds or {}
    return OrderFacts(order, sum(refunds.values()), {}, refunds)


def opened(reason: str = "product_not_received", order: OrderFacts | None = None) -> Any:
    dispute = Dispute.from_stripe(dispute_object(reason=reason))
    return domain.open_chargeback(dispute, order if order is not None else facts(), "pi_test_123", NOW, 7)


def test_a_dispute_is_read_from_stripe_s_object():
    dispute = Dispute.from_stripe(dispute_object(payment_intent={"id": "pi_x", "object": "payment_intent"}))
    assert (dispute.id, dispute.amount, dispute.currency, dispute.reason) == (
        "dp_1",
        2599,
        "USD",
        "product_not_received",
    )
    assert dispute.references == ("pi_x", "ch_test_123")
    assert dispute.due_by == NOW + timedelta(days=10)
    assert Dispute.from_stripe(dispute_object(payment_intent=None)).references == ("ch_test_123",)


@pytest.mark.parametrize(
    "broken", [{"amount": None}, {"payment_intent": None, "charge": None}, {"id": None, "amount": "x"}]
)
def test_a_dispute_without_amount_or_payment_is_unreadable(broken):
    obj = dispute_object(**broken)
    with pytest.raises(UnreadableDispute):
        Dispute.from_stripe({k: v for k, v in obj.items() if v is not None or k not in ("id",)})


def test_opened_for_a_known_order_waits_for_the_seller_for_the_evidence_days():
    chargeback = opened()
    assert chargeback.status is ChargebackStatus.NEEDS_RESPONSE and chargeback.version == 1
    assert chargeback.order_id == "o-1" and chargeback.seller is not None and chargeback.seller.id == "s-1"
    assert chargeback.buyer_id == "b-1" and chargeback.marketplace == "US"
    assert chargeback.amount.amount == 2599 and chargeback.amount.currency == "USD"
    assert chargeback.evidence_due_by == NOW + timedelta(days=7)
    assert chargeback.gateway_due_by == NOW + timedelta(days=10) and chargeback.gateway_status == "needs_response"
    assert chargeback.chargeback_id == domain.chargeback_id("dp_1") != domain.chargeback_id("dp_2")
    assert [(s.action, s.actor.role) for s in chargeback.timeline] == [("open", "service")]


def test_only_fraudulent_disputes_are_fraud_chargebacks():
    assert opened("fraudulent").category is ChargebackCategory.FRAUD
    for reason in ("product_not_received", "product_unacceptable", "duplicate", "general", "subscription_canceled"):
        assert opened(reason).category is ChargebackCategory.SERVICE


def test_an_unknown_payment_gives_a_chargeback_without_order_or_seller():
    dispute = Dispute.from_stripe(dispute_object())
    chargeback = domain.open_chargeback(dispute, None, "pi_test_123", NOW, 7)
    assert chargeback.order_id is None and chargeback.seller is None and chargeback.buyer_id is None
    assert chargeback.status is ChargebackStatus.NEEDS_RESPONSE


def test_the_platform_answers_only_for_an_order_refunded_in_full():
    assert not domain.refunded_in_full(None)
    assert not domain.refunded_in_full(facts())
    assert not domain.refunded_in_full(facts({"rf_1": 2000}))  # shipping is still refundable
    # The payment paid back, the buyer's return postage not yet: the card payment is refunded in full.
    postage = ReturnFacts("ret_1", ReturnStatus.RECEIVED, 4, True, NOW, NOW, postage_paid=750)
    paid_back = facts({"rf_1": 2599})
    assert domain.refunded_in_full(replace(paid_back, returns={"ret_1": postage}))
    refunded = facts({"rf_1": 2000, "rf_2": 599})
    assert domain.refunded_in_full(refunded)
    evidence = domain.refund_evidence(refunded)
    assert evidence.refund_reference == "rf_1, rf_2"
    assert evidence.text is not None and "o-1" in evidence.text and "$25.99" in evidence.text
    assert "rf_1 ($20.00)" in evidence.text and "rf_2 ($5.99)" in evidence.text


def test_evidence_submitted_moves_to_under_review_once():
    chargeback = opened()
    evidence = Evidence(carrier="UPS", tracking_number="1Z9")
    after = domain.evidence_submitted(chargeback, evidence, SELLER, False, NOW + timedelta(hours=1))
    assert after.status is ChargebackStatus.UNDER_REVIEW and after.version == 2 and after.evidence == evidence
    assert after.submitted_at == NOW + timedelta(hours=1) and not after.automatic
    assert after.timeline[-1].action == "submit_evidence" and after.timeline[-1].actor == SELLER
    with pytest.raises(IllegalTransition):
        domain.evidence_submitted(after, evidence, SELLER, False, NOW)
    automatic = domain.evidence_submitted(chargeback, evidence, domain.PLATFORM, True, NOW)
    assert automatic.automatic and automatic.timeline[-1].actor.role == "platform"


def test_evidence_is_taken_from_the_seller_until_their_deadline_and_from_anyone_until_the_gateways():
    chargeback = opened()  # the seller's deadline: NOW + 7 days; the gateway's: NOW + 10 days
    domain.check_submittable(chargeback, now=NOW + timedelta(days=7), by_seller=True)
    with pytest.raises(IllegalTransition, match="the seller's evidence was due by"):
        domain.check_submittable(chargeback, now=NOW + timedelta(days=7, seconds=1), by_seller=True)
    domain.check_submittable(chargeback, now=NOW + timedelta(days=10))  # an agent
    with pytest.raises(IllegalTransition, match="the gateway's deadline"):
        domain.check_submittable(chargeback, now=NOW + timedelta(days=10, seconds=1))
    without_gateway_deadline = chargeback.model_copy(update={"gateway_due_by": None})
    domain.check_submittable(without_gateway_deadline, now=NOW + timedelta(days=30))


@pytest.mark.parametrize(
    ("gateway_status", "outcome"),
    [("won", ChargebackStatus.WON), ("lost", ChargebackStatus.LOST), ("warning_closed", ChargebackStatus.WON)],
)
def test_closed_is_won_or_lost_and_final(gateway_status, outcome):
    for before in (opened(), domain.evidence_submitted(opened(), Evidence(text="x"), SELLER, False, NOW)):
        closed = domain.close(before, Dispute.from_stripe(dispute_object(status=gateway_status)), NOW)
        assert closed.status is outcome and closed.closed_at == NOW and closed.version == before.version + 1
        with pytest.raises(IllegalTransition):
            domain.close(closed, Dispute.from_stripe(dispute_object(status="lost")), NOW)
        with pytest.raises(IllegalTransition):
            domain.check_submittable(closed)


def test_updated_keeps_the_gateway_fields_without_changing_the_status():
    chargeback = opened()
    same = Dispute.from_stripe(dispute_object())
    assert domain.gateway_update(chargeback, same, NOW) is None
    later = NOW + timedelta(days=12)
    moved = Dispute.from_stripe(
        dispute_object(status="under_review", evidence_details={"due_by": int(later.timestamp())})
    )
    after = domain.gateway_update(chargeback, moved, NOW)
    assert after is not None and after.gateway_due_by == later and after.gateway_status == "under_review"
    assert after.status is ChargebackStatus.NEEDS_RESPONSE and after.version == 2
    assert after.timeline == chargeback.timeline
