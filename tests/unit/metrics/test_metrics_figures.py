"""Seller and marketplace figures on a hand-made sequence of returns, refunds and deliveries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.metrics.facts import delivery_fact, refund_fact, return_fact
from services.metrics.figures import Period, overview, percentile, seller_metrics
from shared.models import ReasonCode as R
from shared.models import RefundStatus
from shared.money import Money
from tests.unit.metrics.builders import at, authorized, closed, feedback, order, received, refund, rejected, requested

WEEK = Period(at(0), at(7))
H = 3600.0


def scenario():
    """Seller s1's week (see each comment), plus one return of seller s2."""
    returns, refunds = [], []
    # r1: answered in 4 h, received, refunded on time, buyer satisfied.
    r1 = requested("r1", buyer_id="b1", seller_id="s1", created_at=at(0, 1))
    r1 = received(authorized(r1, at(0, 5)), at(2))
    refunds += [
        refund(r1, issued_at=at(3), amount=1000),
        refund(r1, issued_at=at(2, 1), amount=1000, refund_id="rf-r1-failed", status=RefundStatus.FAILED),
    ]
    returns.append(feedback(r1, at(4), resolved=True))
    # r2: unanswered for 48 h, authorized by the platform: a late response.
    r2 = requested("r2", buyer_id="b2", seller_id="s1", created_at=at(1), lines=[("SKU-B", 2, R.NO_LONGER_NEEDED)])
    returns.append(authorized(r2, at(3), platform=True))
    # r3: rejected in 10 h although the seller was at fault: an invalid rejection.
    r3 = requested("r3", buyer_id="b3", seller_id="s1", created_at=at(2))
    returns.append(rejected(r3, at(2, 10), invalid=True))
    # r4: all three problems at once (late, invalid, negative feedback): still ONE dissatisfied return.
    r4 = requested(
        "r4",
        buyer_id="b1",
        seller_id="s1",
        created_at=at(3),
        lines=[("SKU-A", 1, R.WRONG_ITEM_SENT), ("SKU-B", 1, R.DEFECTIVE)],
    )
    returns.append(feedback(rejected(r4, at(6), invalid=True), at(6, 5), resolved=False))
    # r5: out of policy, rightly rejected in 2 h: not a valid request.
    r5 = requested(
        "r5", buyer_id="b2", seller_id="s1", created_at=at(4), in_policy=False, lines=[("SKU-B", 1, R.NO_LONGER_NEEDED)]
    )
    returns.append(rejected(r5, at(4, 2), invalid=False))
    # r6: requested before the week, answered and refunded (late, by the platform) within it.
    r6 = received(authorized(requested("r6", buyer_id="b4", seller_id="s1", created_at=at(-1)), at(0, 2)), at(1))
    returns.append(r6)
    refunds.append(refund(r6, issued_at=at(5), amount=2500, automatic=True))
    # r7: requested exactly at the end of the week: outside it (the period is half-open).
    returns.append(requested("r7", buyer_id="b4", seller_id="s1", created_at=at(7)))
    # r8: withdrawn by the buyer before any answer; two lines for one reason.
    r8 = requested(
        "r8",
        buyer_id="b5",
        seller_id="s1",
        created_at=at(5),
        lines=[("SKU-A", 1, R.DEFECTIVE), ("SKU-C", 2, R.DEFECTIVE)],
    )
    returns.append(closed(r8, at(5, 1)))
    # r10: an earlier EUR return refunded on time inside the week.
    r10 = received(
        authorized(requested("r10", buyer_id="b6", seller_id="s1", created_at=at(-5), currency="EUR"), at(-4)), at(-1)
    )
    returns.append(r10)
    refunds.append(refund(r10, issued_at=at(1), amount=700))
    # Another seller's return never shows in s1's figures.
    returns.append(rejected(requested("x1", buyer_id="b1", seller_id="s2", created_at=at(1)), at(1, 1), invalid=True))
    deliveries = [
        order("oA", buyer_id="b1", seller_id="s1", delivered_at=at(0), skus={"SKU-A": 10, "SKU-B": 4}),
        order("oB", buyer_id="b2", seller_id="s1", delivered_at=at(6, 23), skus={"SKU-A": 2}),
        order("oC", buyer_id="b3", seller_id="s1", delivered_at=at(7), skus={"SKU-C": 5}),
        order("oD", buyer_id="b3", seller_id="s1", delivered_at=at(-1), skus={"SKU-B": 100}),
        order("oX", buyer_id="b3", seller_id="s2", delivered_at=at(1), skus={"SKU-A": 50}),
    ]
    return (
        [return_fact(r) for r in returns],
        [refund_fact(f) for f in refunds],
        [delivery_fact(o) for o in deliveries],
    )


@pytest.fixture(scope="module")
def s1():
    returns, refunds, deliveries = scenario()
    return seller_metrics("s1", returns, refunds, deliveries, WEEK, target=0.10, reasons=5)


def test_counts_each_transition_in_the_period_it_happened(s1):
    c = s1.counts
    assert (c.requests, c.authorizations, c.platform_authorizations) == (6, 3, 1)
    assert (c.rejections, c.closures, c.shipments, c.receipts, c.expirations, c.refunds) == (3, 1, 0, 2, 0, 3)
    assert s1.returns_by_status == {"authorized": 1, "closed": 1, "refunded": 1, "rejected": 3}


def test_refunded_amounts_per_currency_ignore_failed_refunds(s1):
    assert s1.refunded == [Money(amount=700, currency="EUR"), Money(amount=3500, currency="USD")]


def test_response_time_percentiles_use_nearest_rank(s1):
    # r5 2 h, r1 4 h, r3 10 h, r2 48 h (platform), r4 72 h; r8 was never answered.
    assert s1.response_time.responded == 5
    assert s1.response_time.p50_seconds == 10 * H
    assert s1.response_time.p90_seconds == 72 * H


def test_component_rates_are_over_valid_requests(s1):
    assert s1.valid_requests == 5  # r1 r2 r3 r4 r8
    assert (s1.late_response.count, s1.late_response.of, s1.late_response.rate) == (2, 5, 0.4)
    assert (s1.invalid_rejection.count, s1.invalid_rejection.rate) == (2, 0.4)
    assert (s1.negative_feedback.count, s1.negative_feedback.rate) == (1, 0.2)


def test_dissatisfaction_counts_a_return_once_however_many_problems_it_has(s1):
    d = s1.dissatisfaction
    # 2 late + 2 invalid + 1 negative = 5 problems, but only r2, r3 and r4 are dissatisfied returns.
    assert (d.count, d.of, d.rate) == (3, 5, 0.6)
    assert d.target == 0.10 and d.meets_target is False


def test_refund_timeliness_and_platform_auto_refunds(s1):
    assert (s1.refund_timeliness.count, s1.refund_timeliness.of) == (2, 3)
    assert s1.auto_refunds.count == 1
    assert s1.auto_refunds.amounts == [Money(amount=2500, currency="USD")]


def test_a_returnless_refund_has_no_deadline_to_meet():
    """Nothing is received, so refund timeliness leaves it out (the refunds service still gives it a
    `due_at`: its creation, for its own scheduling)."""
    ret = authorized(requested("rl", buyer_id="b1", seller_id="s1", created_at=at(0, 1)), at(0, 1), returnless=True)
    paid = refund(ret, issued_at=at(0, 2), amount=900)
    assert paid.kind == "returnless" and paid.due_at is not None and paid.issued_at > paid.due_at
    assert refund_fact(paid).on_time is None
    figures = seller_metrics("s1", [return_fact(ret)], [refund_fact(paid)], [], WEEK, target=0.1, reasons=3)
    assert figures.refund_timeliness.of == 0 and figures.counts.refunds == 1


def test_top_reasons_count_returns_once_and_units_in_full(s1):
    reasons = [(r.reason_code, r.fault, r.returns, r.units) for r in s1.top_reasons]
    assert reasons == [
        ("DEFECTIVE", "seller", 4, 6),
        ("NO_LONGER_NEEDED", "buyer", 2, 3),
        ("WRONG_ITEM_SENT", "seller", 1, 1),
    ]


def test_sku_return_rate_is_units_returned_over_units_delivered_in_the_period(s1):
    rates = {r.sku: (r.units_returned, r.units_delivered, r.rate) for r in s1.sku_return_rates}
    assert rates == {"SKU-A": (4, 12, 4 / 12), "SKU-B": (4, 4, 1.0), "SKU-C": (2, 0, None)}


def test_a_return_is_in_the_period_from_its_first_instant_to_just_before_the_end():
    start = requested("a", buyer_id="b", seller_id="s", created_at=WEEK.start)
    last = requested("b", buyer_id="b", seller_id="s", created_at=WEEK.end - timedelta(microseconds=1))
    before = requested("c", buyer_id="b", seller_id="s", created_at=WEEK.start - timedelta(microseconds=1))
    end = requested("d", buyer_id="b", seller_id="s", created_at=WEEK.end)
    figures = seller_metrics(
        "s", [return_fact(r) for r in (start, last, before, end)], [], [], WEEK, target=0.1, reasons=3
    )
    assert figures.counts.requests == 2 and figures.valid_requests == 2


def test_a_response_exactly_at_the_deadline_is_on_time_one_second_later_is_late():
    on_time = requested("a", buyer_id="b", seller_id="s", created_at=at(1))
    late = requested("b", buyer_id="b", seller_id="s", created_at=at(1))
    facts = [return_fact(authorized(on_time, at(3))), return_fact(authorized(late, at(3) + timedelta(seconds=1)))]
    assert [f.late_response for f in facts] == [False, True]
    figures = seller_metrics("s", facts, [], [], WEEK, target=0.1, reasons=3)
    assert figures.late_response.rate == 0.5 and figures.dissatisfaction.rate == 0.5


def test_below_target_meets_it_and_an_empty_period_has_no_rates():
    fine = [
        return_fact(authorized(requested(f"r{i}", buyer_id="b", seller_id="s", created_at=at(1)), at(1, 1)))
        for i in range(10)
    ]
    fine.append(
        return_fact(authorized(requested("late", buyer_id="b", seller_id="s", created_at=at(1)), at(3), platform=True))
    )
    figures = seller_metrics("s", fine, [], [], WEEK, target=0.1, reasons=3)
    assert figures.dissatisfaction.rate == pytest.approx(1 / 11) and figures.dissatisfaction.meets_target
    ten_percent = seller_metrics("s", fine[1:], [], [], WEEK, target=0.1, reasons=3)
    assert ten_percent.dissatisfaction.rate == 0.1 and ten_percent.dissatisfaction.meets_target is False
    empty = seller_metrics("nobody", fine, [], [], WEEK, target=0.1, reasons=3)
    assert empty.dissatisfaction.rate is None and empty.dissatisfaction.meets_target is None
    assert empty.response_time.p50_seconds is None and empty.refund_timeliness.rate is None


def test_refund_on_its_due_instant_is_on_time():
    ret = received(authorized(requested("r", buyer_id="b", seller_id="s", created_at=at(0)), at(0, 1)), at(1))
    assert refund_fact(refund(ret, issued_at=ret.refund_due_at, amount=1)).on_time is True
    assert refund_fact(refund(ret, issued_at=ret.refund_due_at + timedelta(seconds=1), amount=1)).on_time is False


def test_percentile_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([7.0], 90) == 7.0
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == 9
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 90) == 10
    assert percentile([4, 1, 3, 2], 50) == 2


def test_overview_covers_every_seller():
    returns, refunds, _ = scenario()
    o = overview(returns, refunds, WEEK, target=0.1, reasons=2, flagged_buyers=3)
    assert o.counts.requests == 7 and o.valid_requests == 6 and o.dissatisfaction.count == 4
    assert (o.sellers, o.sellers_over_target, o.flagged_buyers) == (2, 2, 3)
    assert [r.reason_code for r in o.top_reasons] == ["DEFECTIVE", "NO_LONGER_NEEDED"]
