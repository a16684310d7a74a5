"""Seller feedback (pure): what a buyer's rating records, and removal by an agent."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.disputes.feedback import AlreadyRemoved, leave, remove
from services.disputes.schemas import FeedbackRequest
from tests.unit.disputes.builders import NOW, facts


def rating(stars: int, comment: str | None = None) -> FeedbackRequest:
    return FeedbackRequest.model_validate({"order_id": "o-1", "rating": stars, "comment": comment})


@pytest.mark.parametrize(("stars", "negative"), [(1, True), (2, True), (3, False), (4, False), (5, False)])
def test_one_or_two_stars_is_negative(stars, negative):
    feedback = leave(facts().order, rating(stars, "ok"), "fbk_1", NOW)
    assert feedback.negative is negative and feedback.rating == stars
    assert (feedback.order_id, feedback.buyer_id, feedback.seller_id) == ("o-1", "b-1", "s-1")
    assert feedback.marketplace == "US" and feedback.version == 1 and feedback.left_at == NOW
    assert feedback.comment == "ok" and not feedback.removed and feedback.removed_at is None


@pytest.mark.parametrize(
    "body", [{"rating": 0}, {"rating": 6}, {"rating": "5"}, {"rating": 4.5}, {"rating": 4, "x": 1}]
)
def test_ratings_are_whole_stars_from_1_to_5(body):
    with pytest.raises(ValueError):
        FeedbackRequest.model_validate({"order_id": "o-1"} | body)


def test_removed_once_by_an_agent_with_a_note():
    feedback = leave(facts().order, rating(1), "fbk_1", NOW)
    later = NOW + timedelta(days=1)
    after = remove(feedback, "Abusive language", later)
    assert after.removed and after.removal_note == "Abusive language" and after.removed_at == later
    assert after.version == 2 and after.rating == 1 and after.negative
    with pytest.raises(AlreadyRemoved):
        remove(after, "again", later)
