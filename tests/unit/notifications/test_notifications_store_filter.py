"""The notifications store's translation of a `NotificationFilter` into MongoDB criteria."""

from __future__ import annotations

from services.notifications.domain import NotificationStatus
from services.notifications.schemas import NotificationFilter, RecipientRole
from services.notifications.store import notification_criteria


def test_an_empty_filter_matches_every_notification():
    assert notification_criteria(NotificationFilter()) == {}


def test_every_field_of_the_filter_becomes_its_criterion():
    wanted = NotificationFilter(
        return_id="ret_1", recipient_role=RecipientRole.SELLER, recipient_id="s-1", status=NotificationStatus.SENT
    )
    assert notification_criteria(wanted) == {
        "return_id": "ret_1",
        "recipient_role": "seller",
        "recipient_id": "s-1",
        "status": "sent",
    }


def test_values_are_stored_as_plain_strings():
    criteria = notification_criteria(
        NotificationFilter(recipient_role=RecipientRole.BUYER, status=NotificationStatus.PENDING)
    )
    assert criteria == {"recipient_role": "buyer", "status": "pending"}
    assert all(type(value) is str for value in criteria.values())
