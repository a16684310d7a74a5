"""The decision table: who hears what for each event (docs/product.md §8)."""

from __future__ import annotations

import pytest

from services.notifications.decisions import RULES, SUBSCRIBED_TYPES, TEMPLATES, decide
from services.notifications.facts import TEMPLATE_LOCALES
from services.notifications.handlers import IGNORED, SUBSCRIPTIONS
from services.notifications.rendering import TEMPLATES_DIR
from services.notifications.samples import sample_data
from services.notifications.subjects import DATA_KINDS
from shared.events import EVENT_TYPES
from shared.models import ALREADY_REFUNDED, RefundKind


@pytest.mark.parametrize(
    ("event_type", "options", "expected"),
    [
        ("return.created", {}, [("buyer", "buyer/return_requested"), ("seller", "seller/new_request")]),
        ("seller.response_due_soon", {}, [("seller", "seller/response_due_soon")]),
        ("return.authorized", {}, [("buyer", "buyer/return_authorized")]),
        (
            "return.authorized",
            {"late": True},
            [("buyer", "buyer/return_authorized"), ("seller", "seller/auto_authorized")],
        ),
        ("return.authorized", {"returnless": True}, [("buyer", "buyer/returnless_refund")]),
        # At once, by the seller's own policy: the seller hears that it needs no answer.
        (
            "return.authorized",
            {"automatic": True},
            [("buyer", "buyer/return_authorized"), ("seller", "seller/auto_authorized")],
        ),
        (
            "return.authorized",
            {"returnless": True, "automatic": True},
            [("buyer", "buyer/returnless_refund"), ("seller", "seller/auto_authorized")],
        ),
        ("return.rejected", {}, [("buyer", "buyer/return_rejected")]),
        ("return.closed", {}, [("buyer", "buyer/return_closed")]),
        ("return.expired", {}, [("buyer", "buyer/return_expired")]),
        ("return.shipped", {}, [("seller", "seller/return_shipped")]),
        ("return.received", {}, [("buyer", "buyer/item_received"), ("seller", "seller/item_received")]),
        ("return.refunded", {}, [("buyer", "buyer/refunded")]),
        ("return.refunded", {"automatic": True}, [("buyer", "buyer/refunded")]),
        ("refund.issued", {}, []),  # the buyer hears through return.refunded
        ("refund.issued", {"automatic": True}, [("seller", "seller/auto_refunded")]),
        ("refund.issued", {"direct": True}, [("buyer", "buyer/refunded")]),
        ("refund.failed", {}, [("buyer", "buyer/refund_failed")]),
        ("return.feedback_received", {}, []),
        ("claim.filed", {}, [("buyer", "buyer/claim_received"), ("seller", "seller/claim_filed")]),
        ("claim.response_due_soon", {}, [("seller", "seller/claim_response_due_soon")]),
        ("claim.granted", {}, [("buyer", "buyer/claim_granted"), ("seller", "seller/claim_granted")]),
        ("claim.granted", {"automatic": True}, [("buyer", "buyer/claim_granted"), ("seller", "seller/claim_granted")]),
        ("claim.denied", {}, [("buyer", "buyer/claim_denied"), ("seller", "seller/claim_denied")]),
        ("claim.closed", {"already_refunded": True}, [("buyer", "buyer/claim_already_refunded")]),
        ("claim.closed", {}, []),  # paid: the buyer hears through the refund's own email
        ("chargeback.opened", {}, [("seller", "seller/chargeback_opened")]),
        ("chargeback.opened", {"automatic": True}, [("seller", "seller/chargeback_opened")]),
        ("chargeback.opened", {"no_seller": True}, []),
        ("chargeback.evidence_submitted", {"automatic": True}, [("seller", "seller/chargeback_answered")]),
        ("chargeback.evidence_submitted", {}, []),  # the seller's own evidence
        ("chargeback.evidence_submitted", {"automatic": True, "no_seller": True}, []),
        ("chargeback.won", {}, [("seller", "seller/chargeback_won")]),
        ("chargeback.lost", {}, [("seller", "seller/chargeback_lost")]),
        ("chargeback.lost", {"no_seller": True}, []),
        ("return.offer_made", {}, [("buyer", "buyer/offer_made")]),
        ("return.offer_accepted", {}, [("buyer", "buyer/offer_accepted"), ("seller", "seller/offer_accepted")]),
        ("return.offer_declined", {}, [("seller", "seller/offer_declined")]),
        ("return.offer_expired", {}, [("buyer", "buyer/offer_expired"), ("seller", "seller/offer_expired")]),
        ("return.replacement_ordered", {}, [("seller", "seller/replacement_ordered")]),
        ("return.replacement_shipped", {}, [("buyer", "buyer/replacement_shipped")]),
        ("return.replacement_unavailable", {}, [("buyer", "buyer/replacement_unavailable")]),
        (
            "return.received",
            {"replacing": True},
            [("buyer", "buyer/item_received"), ("seller", "seller/item_received")],
        ),
        ("return.refunded", {"store_credit": True}, [("buyer", "buyer/refunded")]),
        ("store_credit.granted", {}, [("buyer", "buyer/store_credit_granted")]),
    ],
)
def test_who_hears_what(event_type: str, options: dict, expected: list) -> None:
    assert decide(event_type, sample_data(event_type, **options)) == expected


def test_events_outside_the_table_send_nothing() -> None:
    assert decide("buyer.flagged", object()) == []
    assert decide("notification.sent", object()) == []


def test_claim_refund_that_found_the_order_refunded_is_told_by_the_claim_not_as_a_failure() -> None:
    claim_refund = sample_data("refund.failed").model_copy(
        update={"kind": RefundKind.CLAIM, "claim_id": "clm_sample1", "return_id": None}
    )
    assert decide("refund.failed", claim_refund.model_copy(update={"failure_reason": "gateway_declined"})) == [
        ("buyer", "buyer/refund_failed")
    ]
    assert decide("refund.failed", claim_refund.model_copy(update={"failure_reason": ALREADY_REFUNDED})) == []


def test_a_chargeback_without_an_order_emails_no_one_even_if_a_seller_is_set() -> None:
    orphan = sample_data("chargeback.opened").model_copy(update={"order_id": None})
    assert decide("chargeback.opened", orphan) == []


def test_every_registered_type_is_subscribed_or_explicitly_not_consumed() -> None:
    """A type in the registry is in the table or in IGNORED with its reason, never both, never neither."""
    assert set(SUBSCRIBED_TYPES) | set(IGNORED) == set(EVENT_TYPES)
    assert not set(IGNORED) & set(SUBSCRIBED_TYPES)
    assert all(reason.strip() for reason in IGNORED.values())
    assert {s.event_type for s in SUBSCRIPTIONS} == set(SUBSCRIBED_TYPES)
    assert {rule.event_type for rule in RULES} <= set(EVENT_TYPES)
    # The handler reads the parties of exactly these kinds of data (subjects.py).
    assert {EVENT_TYPES[name].data for name in SUBSCRIBED_TYPES} == set(DATA_KINDS)


@pytest.mark.parametrize(
    "event_type",
    ["claim.seller_responded", "claim.withdrawn", "feedback.left", "feedback.removed", "order.expired"],
)
def test_dispute_events_that_send_nothing_are_not_consumed(event_type: str) -> None:
    assert event_type in IGNORED and event_type not in SUBSCRIBED_TYPES


@pytest.mark.parametrize("locale", TEMPLATE_LOCALES)
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_exists_in_every_locale(template: str, locale: str) -> None:
    for part in ("txt", "html"):
        assert (TEMPLATES_DIR / locale / f"{template}.{part}").is_file()
    assert template.split("/")[0] in ("buyer", "seller")


@pytest.mark.parametrize("event_type", ["return.replaced", "store_credit.debited"])
def test_resolution_events_that_send_nothing_are_not_consumed(event_type: str) -> None:
    assert event_type in IGNORED and event_type not in SUBSCRIBED_TYPES
    assert IGNORED[event_type] != "no email yet"  # the contract's placeholder reason is gone


def test_an_offer_event_without_its_offer_emails_no_one() -> None:
    # Defensive: the returns service always carries the offer; without one there is nothing to say.
    assert decide("return.offer_made", sample_data("return.offer_made").model_copy(update={"offers": []})) == []
    decided = sample_data("return.offer_made").model_copy(
        update={"offers": sample_data("return.offer_declined").offers}
    )
    assert decide("return.offer_made", decided) == []  # no open offer
    assert decide("return.offer_expired", sample_data("return.offer_expired").model_copy(update={"offers": []})) == []
    assert (
        decide(
            "return.replacement_ordered",
            sample_data("return.replacement_ordered").model_copy(update={"replacement": None}),
        )
        == []
    )


def test_a_store_credit_grant_without_its_buyer_emails_no_one() -> None:
    assert decide("store_credit.granted", sample_data("store_credit.granted").model_copy(update={"buyer": None})) == []
    assert decide("store_credit.granted", sample_data("store_credit.debited")) == []  # a debit names no buyer party
