"""The decision table: who hears what for each event (docs/product.md §8)."""

from __future__ import annotations

import pytest

from services.notifications.decisions import RULES, SUBSCRIBED_TYPES, TEMPLATES, decide
from services.notifications.facts import TEMPLATE_LOCALES
from services.notifications.handlers import IGNORED, SUBSCRIPTIONS
from services.notifications.rendering import TEMPLATES_DIR
from services.notifications.samples import sample_data
from shared.events import EVENT_TYPES
from shared.models import Refund, Return


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
    ],
)
def test_who_hears_what(event_type: str, options: dict, expected: list) -> None:
    assert decide(event_type, sample_data(event_type, **options)) == expected


def test_events_outside_the_table_send_nothing() -> None:
    assert decide("buyer.flagged", object()) == []
    assert decide("notification.sent", object()) == []


def test_subscriptions_cover_every_return_and_refund_event_that_can_send() -> None:
    """Every registered type carrying a Return or Refund is in the table or explicitly ignored."""
    about_returns = {name for name, registered in EVENT_TYPES.items() if registered.data in (Return, Refund)}
    assert set(SUBSCRIBED_TYPES) == about_returns - set(IGNORED)
    assert set(IGNORED) <= about_returns and not set(IGNORED) & set(SUBSCRIBED_TYPES)
    assert {s.event_type for s in SUBSCRIPTIONS} == set(SUBSCRIBED_TYPES)
    assert {rule.event_type for rule in RULES} <= set(EVENT_TYPES)


@pytest.mark.parametrize("locale", TEMPLATE_LOCALES)
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_exists_in_every_locale(template: str, locale: str) -> None:
    for part in ("txt", "html"):
        assert (TEMPLATES_DIR / locale / f"{template}.{part}").is_file()
    assert template.split("/")[0] in ("buyer", "seller")
