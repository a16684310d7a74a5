"""Buyer abuse rules: returns and return rate over the last 90 days."""

from __future__ import annotations

from datetime import timedelta

from services.metrics.abuse import Thresholds, assess
from services.metrics.facts import delivery_fact, return_fact
from tests.unit.metrics.builders import at, order, requested

RULES = Thresholds(window_days=90, max_returns=5, max_return_rate=0.5, min_orders=4)
NOW = at(100)


def returns_of(buyer_id: str, *created, orders: list[str] | None = None):
    orders = orders or [f"o-{buyer_id}-{i}" for i in range(len(created))]
    return [
        return_fact(requested(f"r-{buyer_id}-{i}", order_id=o, buyer_id=buyer_id, seller_id="s", created_at=when))
        for i, (when, o) in enumerate(zip(created, orders, strict=True))
    ]


def orders_of(buyer_id: str, *delivered):
    return [
        delivery_fact(
            order(f"o-{buyer_id}-{i}", buyer_id=buyer_id, seller_id="s", delivered_at=when, skus={"SKU-A": 1})
        )
        for i, when in enumerate(delivered)
    ]


def test_five_returns_in_the_window_flag_the_buyer_four_do_not():
    deliveries = orders_of("b", *[at(20)] * 20)  # plenty of orders: the rate stays low
    four = assess("b", returns_of("b", *[at(50)] * 4), deliveries, NOW, RULES)
    five = assess("b", returns_of("b", *[at(50)] * 5), deliveries, NOW, RULES)
    assert (four.flagged, four.returns, four.orders) == (False, 4, 20)
    assert (five.flagged, five.returns) == (True, 5)
    assert "5 returns in 90 days" in five.reason


def test_the_window_includes_its_first_instant_and_nothing_older():
    edge = NOW - timedelta(days=90)
    inside = assess("b", returns_of("b", edge, *[at(60)] * 4), [], NOW, RULES)
    outside = assess("b", returns_of("b", edge - timedelta(seconds=1), *[at(60)] * 4), [], NOW, RULES)
    assert (inside.returns, inside.flagged) == (5, True)
    assert (outside.returns, outside.flagged) == (4, True)  # still 4 of 4 orders returned: the rate rule
    assert outside.reason.startswith("return rate 100% over 4 orders")


def test_a_return_stamped_just_after_now_by_another_services_clock_counts_at_once():
    deliveries = orders_of("b", *[at(20)] * 20)
    ahead = NOW + timedelta(milliseconds=5)  # the returns service's clock runs a little ahead
    standing = assess("b", returns_of("b", *[at(50)] * 4, ahead), deliveries, NOW, RULES)
    assert (standing.returns, standing.flagged) == (5, True)


def test_half_of_four_orders_returned_flags_but_not_below_four_orders_or_half():
    half_of_four = assess(
        "b", returns_of("b", at(50), at(51)), orders_of("b", at(40), at(41), at(42), at(43)), NOW, RULES
    )
    assert (half_of_four.flagged, half_of_four.orders, half_of_four.returned_orders) == (True, 4, 2)
    assert half_of_four.return_rate == 0.5
    two_of_three = assess("b", returns_of("b", at(50), at(51)), orders_of("b", at(40), at(41), at(42)), NOW, RULES)
    assert (two_of_three.flagged, two_of_three.return_rate) == (False, 2 / 3)
    two_of_five = assess("b", returns_of("b", at(50), at(51)), orders_of("b", *[at(40)] * 5), NOW, RULES)
    assert (two_of_five.flagged, two_of_five.return_rate) == (False, 0.4)
    assert two_of_five.reason == "under the abuse thresholds"


def test_several_returns_of_one_order_count_the_order_once_for_the_rate():
    rets = returns_of("b", at(50), at(51), at(52), orders=["o-b-0", "o-b-0", "o-b-0"])
    standing = assess("b", rets, orders_of("b", at(40), at(41), at(42), at(43)), NOW, RULES)
    assert (standing.returns, standing.returned_orders, standing.orders, standing.flagged) == (3, 1, 4, False)


def test_an_order_known_only_from_its_return_still_counts_as_an_order():
    standing = assess("b", returns_of("b", at(50), orders=["o-unseen"]), orders_of("b", at(40)), NOW, RULES)
    assert (standing.orders, standing.returned_orders) == (2, 1)


def test_other_buyers_facts_are_ignored_and_review_comes_when_the_oldest_fact_leaves_the_window():
    standing = assess(
        "b",
        returns_of("x", *[at(50)] * 9) + returns_of("b", at(30)),
        orders_of("b", at(60)) + orders_of("x", at(61)),
        NOW,
        RULES,
    )
    assert (standing.returns, standing.orders, standing.flagged) == (1, 1, False)  # same order o-b-0
    assert standing.review_at == at(30) + timedelta(days=90)
    assert assess("nobody", [], [], NOW, RULES).review_at is None


def test_thresholds_are_configurable():
    strict = Thresholds(window_days=30, max_returns=2, max_return_rate=0.9, min_orders=10)
    assert assess("b", returns_of("b", at(80), at(81)), [], NOW, strict).flagged
    assert not assess("b", returns_of("b", at(60), at(81)), [], NOW, strict).flagged  # at(60) is 40 days old


def test_a_timestamp_far_ahead_of_now_does_not_count_yet():
    deliveries = orders_of("b", *[at(20)] * 20)
    far = NOW + timedelta(days=30)  # a wrong date, not a clock's drift
    standing = assess("b", returns_of("b", *[at(50)] * 4, far), deliveries, NOW, RULES)
    assert (standing.returns, standing.flagged) == (4, False)
