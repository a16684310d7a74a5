"""The order defect rate and seller rating (services/metrics/defects.py) on hand-made facts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.metrics.defects import ClaimsCountedRule, dispute_totals, order_defects, window_ending
from services.metrics.dispute_facts import (
    ChargebackFact,
    ClaimFact,
    ExpiredFact,
    FeedbackFact,
    chargeback_fact,
    claim_fact,
    expired_fact,
    feedback_fact,
    from_document,
    to_document,
)
from services.metrics.facts import delivery_fact, refund_fact
from services.metrics.figures import Period
from tests.unit.metrics.builders import at, order
from tests.unit.metrics.dispute_builders import (
    chargeback,
    chargeback_closed,
    claim,
    denied,
    expired_order,
    granted,
    order_refund,
    refunded_by_seller,
    removed,
    seller_feedback,
    withdrawn,
)

NOW = at(70)
WINDOW = window_ending(NOW, 60)  # [at(10), at(70))
SECOND = timedelta(seconds=1)


def delivered(order_id: str, when, seller_id: str = "s1"):
    return delivery_fact(order(order_id, buyer_id="b1", seller_id=seller_id, delivered_at=when, skus={"SKU-1": 1}))


def stars(feedback_id: str, order_id: str, rating: int, seller_id: str = "s1"):
    return seller_feedback(feedback_id, order_id=order_id, seller_id=seller_id, rating=rating, left_at=at(40))


def filed(claim_id: str, order_id: str, seller_id: str = "s1"):
    return claim(claim_id, order_id=order_id, seller_id=seller_id, filed_at=at(41))


def disputed(chargeback_id: str, order_id: str | None, *, fraud: bool = False, seller_id: str | None = "s1"):
    return chargeback(chargeback_id, order_id=order_id, seller_id=seller_id, opened_at=at(42), fraud=fraud)


def seller_window():
    """Seller s1's 60 days: o1..o11 delivered in the window (o11 exactly at its start), o12 a second
    before it, o13 is seller s2's; and what happened to each."""
    deliveries = [delivered(f"o{i}", at(19 + i)) for i in range(1, 11)]
    deliveries += [delivered("o11", WINDOW.start), delivered("o12", WINDOW.start - SECOND)]
    deliveries += [delivered("o13", at(30), seller_id="s2")]
    feedback = [
        stars("f1", "o1", 2),  # negative: a defect
        removed(stars("f5", "o5", 1), at(45)),  # negative but removed: never counts
        stars("f6", "o6", 5),
        stars("f10", "o10", 1),
        stars("f11", "o11", 3),  # 3 stars is not negative
    ]
    claims = [
        filed("c2", "o2"),  # open
        denied(filed("c8", "o8"), at(44)),
        withdrawn(filed("c9", "o9"), at(44)),
        granted(filed("c10", "o10"), at(44), automatic=True),
        filed("c12", "o12"),  # on an order delivered before the window
        filed("c13", "o13", seller_id="s2"),
    ]
    chargebacks = [
        disputed("cb3", "o3"),  # service: a defect
        disputed("cb4", "o4", fraud=True),  # fraud: not a defect, o4 stays perfect
        disputed("cb10", "o10"),
        disputed("cb-none", None, seller_id=None),  # no order carries its payment
    ]
    refunds = [order_refund("rf7", order_id="o7", seller_id="s1", issued_at=at(35))]
    expired = [
        expired_order("x1", seller_id="s1", expired_at=at(30)),
        expired_order("x2", seller_id="s1", expired_at=WINDOW.start - SECOND),
        expired_order("x3", seller_id="s2", expired_at=at(30)),
    ]
    return {
        "deliveries": deliveries,
        "claims": [claim_fact(c) for c in claims],
        "chargebacks": [chargeback_fact(c) for c in chargebacks],
        "feedback": [feedback_fact(f) for f in feedback],
        "refunds": [refund_fact(r) for r in refunds],
        "expired": [expired_fact(e) for e in expired],
    }


def defects_of(facts, *, counted="all", target=0.01, seller_id="s1", window=WINDOW):
    rule = ClaimsCountedRule.everywhere(counted)
    return order_defects(seller_id, window, **facts, target=target, claims_counted=rule, window_days=60)


def test_every_filed_claim_counts_by_default():
    report = defects_of(seller_window())
    assert report.orders_delivered == 11  # o1..o11: the window's start is in it, o12 a second earlier is not
    assert (report.window.from_, report.window.to) == (at(10), NOW)
    # Defective orders: o1 (feedback), o2, o8, o9 (claims), o3 (chargeback), o10 (all three at once).
    assert (report.order_defect_rate.count, report.order_defect_rate.of) == (6, 11)
    assert report.order_defect_rate.rate == pytest.approx(6 / 11)
    assert (report.negative_feedback.count, report.a_to_z_claims.count, report.service_chargebacks.count) == (2, 4, 2)
    assert report.a_to_z_claims.rate == pytest.approx(4 / 11)
    assert (report.target, report.meets_target, report.claims_counted) == (0.01, False, "all")
    assert report.fraud_chargebacks == 1
    # +100 for o4, o5, o6, o11 (o7 was refunded); -500 for 4 claims, 2 feedback, 2 chargebacks, 1 expired order.
    rating = report.rating
    assert (rating.perfect_orders, rating.claims, rating.negative_feedback) == (4, 4, 2)
    assert (rating.service_chargebacks, rating.orders_expired) == (2, 1)
    assert rating.score == 4 * 100 - 9 * 500


def test_the_setting_may_leave_out_claims_denied_or_withdrawn():
    report = defects_of(seller_window(), counted="exclude_denied_or_withdrawn")
    assert report.claims_counted == "exclude_denied_or_withdrawn"
    # c8 (denied) and c9 (withdrawn) no longer count: o8 and o9 are perfect orders now.
    assert (report.a_to_z_claims.count, report.order_defect_rate.count) == (2, 4)
    assert report.rating.perfect_orders == 6
    assert report.rating.score == 6 * 100 - (2 + 2 + 2 + 1) * 500


def test_an_open_or_granted_claim_counts_under_either_setting():
    facts = {
        "deliveries": [delivered("o1", at(20)), delivered("o2", at(20))],
        "claims": [claim_fact(filed("c1", "o1")), claim_fact(refunded_by_seller(filed("c2", "o2"), at(42)))],
        "chargebacks": [],
        "feedback": [],
        "refunds": [],
        "expired": [],
    }
    for counted in ("all", "exclude_denied_or_withdrawn"):
        assert defects_of(facts, counted=counted).a_to_z_claims.count == 2


def test_removed_feedback_counts_nowhere():
    left = stars("f1", "o1", 1)
    facts = {
        "deliveries": [delivered("o1", at(20))],
        "claims": [],
        "chargebacks": [],
        "feedback": [feedback_fact(left)],
        "refunds": [],
        "expired": [],
    }
    before = defects_of(facts)
    assert (before.negative_feedback.count, before.order_defect_rate.count, before.rating.score) == (1, 1, -500)
    after = defects_of(facts | {"feedback": [feedback_fact(removed(left, at(50)))]})
    assert (after.negative_feedback.count, after.order_defect_rate.count) == (0, 0)
    assert (after.rating.negative_feedback, after.rating.perfect_orders, after.rating.score) == (0, 1, 100)


def test_fraud_chargebacks_are_shown_but_never_count():
    facts = {
        "deliveries": [delivered("o1", at(20)), delivered("o2", at(20))],
        "claims": [],
        "chargebacks": [chargeback_fact(disputed("cb1", "o1", fraud=True)), chargeback_fact(disputed("cb2", "o2"))],
        "feedback": [],
        "refunds": [],
        "expired": [],
    }
    report = defects_of(facts)
    assert (report.fraud_chargebacks, report.service_chargebacks.count, report.order_defect_rate.count) == (1, 1, 1)
    assert (report.rating.service_chargebacks, report.rating.perfect_orders, report.rating.score) == (1, 1, -400)


def test_the_window_is_half_open_and_ends_now():
    facts = {
        "deliveries": [
            delivered("at-start", WINDOW.start),
            delivered("before-start", WINDOW.start - timedelta(microseconds=1)),
            delivered("just-before-now", NOW - timedelta(microseconds=1)),
            delivered("at-now", NOW),
        ],
        "claims": [claim_fact(filed(f"c-{o}", o)) for o in ("at-start", "before-start", "at-now")],
        "chargebacks": [],
        "feedback": [],
        "refunds": [],
        "expired": [
            expired_fact(expired_order("x-start", seller_id="s1", expired_at=WINDOW.start)),
            expired_fact(expired_order("x-now", seller_id="s1", expired_at=NOW)),
        ],
    }
    report = defects_of(facts)
    assert report.orders_delivered == 2
    assert (report.a_to_z_claims.count, report.rating.perfect_orders, report.rating.orders_expired) == (1, 1, 1)
    assert report.rating.score == 100 - 2 * 500


def test_two_claims_on_one_order_are_one_defective_order_and_two_penalties():
    facts = {
        "deliveries": [delivered("o1", at(20))],
        "claims": [claim_fact(withdrawn(filed("c1", "o1"), at(42))), claim_fact(filed("c2", "o1"))],
        "chargebacks": [],
        "feedback": [],
        "refunds": [],
        "expired": [],
    }
    report = defects_of(facts)
    assert (report.a_to_z_claims.count, report.order_defect_rate.count, report.rating.claims) == (1, 1, 2)
    assert report.rating.score == -1000


@pytest.mark.parametrize(("orders", "met"), [(100, False), (101, True)])
def test_the_target_is_met_below_it_only(orders, met):
    facts = {
        "deliveries": [delivered(f"o{i}", at(20)) for i in range(orders)],
        "claims": [claim_fact(filed("c1", "o0"))],
        "chargebacks": [],
        "feedback": [],
        "refunds": [],
        "expired": [],
    }
    assert defects_of(facts).meets_target is met


def test_no_orders_delivered_no_rates_but_expired_orders_still_cost():
    facts = seller_window() | {"deliveries": []}
    report = defects_of(facts)
    assert report.orders_delivered == 0
    assert (report.order_defect_rate.rate, report.negative_feedback.rate, report.meets_target) == (None, None, None)
    assert report.rating.score == -500  # x1


def test_overview_totals_count_each_step_in_its_period():
    march = Period(at(0), at(30))
    claims = [
        granted(filed("c1", "o1"), at(44), automatic=True),  # filed at(41): neither in March
        claim("c2", order_id="o2", seller_id="s1", filed_at=at(1)),
        denied(claim("c3", order_id="o3", seller_id="s1", filed_at=at(1)), at(2)),
        withdrawn(claim("c4", order_id="o4", seller_id="s1", filed_at=at(1)), at(2)),
        granted(claim("c5", order_id="o5", seller_id="s1", filed_at=at(1)), at(3), automatic=True),
        granted(claim("c6", order_id="o6", seller_id="s1", filed_at=at(1)), at(35)),  # granted after March
        refunded_by_seller(claim("c7", order_id="o7", seller_id="s1", filed_at=at(1)), at(2)),
    ]
    cb = [
        chargeback("cb1", order_id="o1", seller_id="s1", opened_at=at(1)),
        chargeback_closed(chargeback("cb2", order_id="o2", seller_id="s1", opened_at=at(1)), at(5), won=True),
        chargeback_closed(
            chargeback("cb3", order_id="o3", seller_id="s1", opened_at=at(1), fraud=True), at(5), won=False
        ),
        chargeback_closed(
            chargeback("cb4", order_id=None, seller_id=None, opened_at=at(1), fraud=True), at(40), won=True
        ),
    ]
    feedback = [
        seller_feedback("f1", order_id="o1", seller_id="s1", rating=1, left_at=at(1)),
        removed(seller_feedback("f2", order_id="o2", seller_id="s1", rating=2, left_at=at(1)), at(2)),
        seller_feedback("f3", order_id="o3", seller_id="s1", rating=4, left_at=at(1)),
        seller_feedback("f4", order_id="o4", seller_id="s1", rating=2, left_at=at(31)),
    ]
    expired = [
        expired_order("x1", seller_id="s1", expired_at=at(3)),
        expired_order("x2", seller_id="s1", expired_at=at(30)),
    ]
    totals = dispute_totals(
        march,
        claims=[claim_fact(c) for c in claims],
        chargebacks=[chargeback_fact(c) for c in cb],
        feedback=[feedback_fact(f) for f in feedback],
        expired=[expired_fact(e) for e in expired],
    )
    c = totals.claims
    assert (c.filed, c.refunded_by_seller, c.granted, c.granted_automatically, c.denied, c.withdrawn) == (
        6,
        1,
        1,
        1,
        1,
        1,
    )
    assert totals.service_chargebacks.model_dump() == {"opened": 2, "won": 1, "lost": 0}
    assert totals.fraud_chargebacks.model_dump() == {"opened": 2, "won": 0, "lost": 1}
    assert (totals.negative_feedback, totals.feedback_removed, totals.orders_expired) == (1, 1, 1)


def test_facts_survive_their_documents():
    facts = [
        claim_fact(granted(filed("c1", "o1"), at(44), automatic=True)),
        chargeback_fact(chargeback_closed(disputed("cb1", "o1"), at(50), won=False)),
        feedback_fact(removed(stars("f1", "o1", 1), at(45))),
        expired_fact(expired_order("x1", seller_id="s1", expired_at=at(30)), sequence=3),
    ]
    for fact, kind in zip(facts, (ClaimFact, ChargebackFact, FeedbackFact, ExpiredFact), strict=True):
        doc = to_document(fact)
        assert from_document(kind, doc) == fact
        assert doc["first_at"] <= doc["last_event_at"]
    granted_claim = to_document(facts[0])
    assert (granted_claim["_id"], granted_claim["first_at"], granted_claim["last_event_at"]) == ("c1", at(41), at(44))
    assert facts[0].granted_at == at(44) and facts[0].automatic
    assert to_document(facts[2])["last_event_at"] == at(45)
