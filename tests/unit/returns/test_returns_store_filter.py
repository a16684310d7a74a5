"""The returns store's translation of a `ReturnFilter` into MongoDB criteria."""

from __future__ import annotations

from datetime import UTC, datetime

from services.returns.schemas import ReturnFilter
from services.returns.store import return_criteria
from shared.models import ReturnStatus

FROM = datetime(2025, 3, 1, tzinfo=UTC)
TO = datetime(2025, 4, 1, tzinfo=UTC)


def test_an_empty_filter_matches_every_return():
    assert return_criteria(ReturnFilter()) == {}


def test_every_field_of_the_filter_becomes_its_criterion():
    wanted = ReturnFilter(
        order_id="o-1", buyer_id="b-1", seller_id="s-1", status=ReturnStatus.CLOSED, created_from=FROM, created_to=TO
    )
    assert return_criteria(wanted) == {
        "order_id": "o-1",
        "buyer.id": "b-1",
        "seller.id": "s-1",
        "status": "closed",
        "created_at": {"$gte": FROM, "$lt": TO},
    }


def test_a_period_open_at_either_end():
    assert return_criteria(ReturnFilter(created_from=FROM)) == {"created_at": {"$gte": FROM}}
    assert return_criteria(ReturnFilter(created_to=TO)) == {"created_at": {"$lt": TO}}


def test_the_parties_are_matched_on_their_ids():
    assert return_criteria(ReturnFilter(buyer_id="b-1")) == {"buyer.id": "b-1"}
    assert return_criteria(ReturnFilter(seller_id="s-1", status=ReturnStatus.REQUESTED)) == {
        "seller.id": "s-1",
        "status": "requested",
    }
