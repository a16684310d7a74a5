"""The refunds store's translation of a `RefundFilter` into MongoDB criteria."""

from __future__ import annotations

from services.refunds.schemas import RefundFilter
from services.refunds.store import refund_criteria
from shared.models import RefundStatus


def test_an_empty_filter_matches_every_refund():
    assert refund_criteria(RefundFilter()) == {}


def test_every_field_of_the_filter_becomes_its_criterion():
    wanted = RefundFilter(
        return_id="ret_1", order_id="o-1", buyer_id="b-1", seller_id="s-1", status=RefundStatus.ISSUED
    )
    assert refund_criteria(wanted) == {
        "return_id": "ret_1",
        "order_id": "o-1",
        "buyer.id": "b-1",
        "seller.id": "s-1",
        "status": "issued",
    }


def test_the_parties_are_matched_on_their_ids():
    assert refund_criteria(RefundFilter(buyer_id="b-1")) == {"buyer.id": "b-1"}
    assert refund_criteria(RefundFilter(seller_id="s-1", status=RefundStatus.FAILED)) == {
        "seller.id": "s-1",
        "status": "failed",
    }
