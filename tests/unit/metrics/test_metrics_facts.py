"""What a fact keeps of an event's full state, and how a period query is read."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from services.metrics.abuse import Standing
from services.metrics.api import period_of
from services.metrics.facts import (
    delivery_fact,
    delivery_from_document,
    refund_fact,
    refund_from_document,
    return_fact,
    return_from_document,
    to_document,
)
from services.metrics.flags import flag_event
from services.metrics.settings import Settings
from shared.clock import FixedClock
from shared.http import Unprocessable
from shared.models import BuyerFlag
from shared.models import ReasonCode as R
from tests.unit.metrics.builders import at, authorized, feedback, order, received, refund, rejected, requested


def test_platform_authorization_is_a_late_response_answered_at_the_deadline():
    ret = authorized(requested("r", buyer_id="b", seller_id="s", created_at=at(0)), at(2), platform=True)
    fact = return_fact(ret)
    assert fact.platform_authorized and fact.late_response and fact.responded_at == at(2)
    assert not fact.invalid_rejection and not fact.negative_feedback


def test_seller_auto_authorization_is_a_prompt_response():
    fact = return_fact(authorized(requested("r", buyer_id="b", seller_id="s", created_at=at(0)), at(0), automatic=True))
    assert (fact.platform_authorized, fact.late_response, fact.responded_at) == (False, False, at(0))


def test_invalid_rejection_and_negative_feedback_are_kept_and_make_one_dissatisfied_return():
    ret = requested("r", buyer_id="b", seller_id="s", created_at=at(0), lines=[("A", 2, R.DEFECTIVE)])
    fact = return_fact(feedback(rejected(ret, at(1), invalid=True), at(3), resolved=False))
    assert fact.invalid_rejection and fact.negative_feedback and fact.dissatisfied
    assert fact.version == 3 and fact.units == 2
    assert not return_fact(feedback(ret, at(3), resolved=True)).negative_feedback


def test_facts_survive_a_round_trip_through_their_documents():
    ret = received(authorized(requested("r", buyer_id="b", seller_id="s", created_at=at(0)), at(0, 1)), at(1))
    rf, rfd = return_fact(ret), refund_fact(refund(ret, issued_at=at(2), amount=1234, automatic=True))
    df = delivery_fact(order("o", buyer_id="b", seller_id="s", delivered_at=at(-2), skus={"A": 2, "B": 1}), 4)
    doc = to_document(rf)
    assert doc["_id"] == "r" and doc["last_event_at"] == rf.response_due_at  # the latest instant it holds
    assert return_from_document(doc) == rf
    assert refund_from_document(to_document(rfd)) == rfd and rfd.amount == 1234 and rfd.currency == "USD"
    assert delivery_from_document(to_document(df)) == df and df.sequence == 4


def test_a_facts_document_is_what_dataclasses_asdict_makes_of_it():
    ret = received(authorized(requested("r", buyer_id="b", seller_id="s", created_at=at(0)), at(0, 1)), at(1))
    df = delivery_fact(order("o", buyer_id="b", seller_id="s", delivered_at=at(-2), skus={"A": 2, "B": 1}), 4)
    for fact, key in ((return_fact(ret), "return_id"), (df, "order_id")):
        doc = to_document(fact)
        expected = asdict(fact) | {"_id": getattr(fact, key)}
        assert {k: v for k, v in doc.items() if k != "last_event_at"} == expected
        assert [type(line) for line in doc["lines"]] == [dict] * len(fact.lines) and fact.lines


def test_flag_event_carries_the_standing_and_the_buyer_document_version():
    standing = Standing(
        buyer_id="b",
        returns=5,
        orders=6,
        returned_orders=5,
        flagged=True,
        reason="5 returns",
        assessed_at=at(10),
        review_at=None,
    )
    event = flag_event(standing, 3)
    assert (event.type, event.subject, event.sequence, event.source) == ("buyer.flagged", "b", 3, "/services/metrics")
    data = event.typed()
    assert isinstance(data, BuyerFlag) and (data.returns_90d, data.orders_90d, data.return_rate_90d) == (5, 6, 5 / 6)
    unflagged = flag_event(Standing("b", 0, 0, 0, False, "under", at(10), None), 4)
    assert unflagged.type == "buyer.unflagged" and unflagged.typed().return_rate_90d == 0.0


NOW = datetime(2025, 6, 1, tzinfo=UTC)
REPORTS = SimpleNamespace(settings=Settings(), clock=FixedClock(NOW))


def test_period_defaults_to_the_last_30_days():
    period = period_of(None, None, REPORTS)
    assert (period.start, period.end) == (NOW - timedelta(days=30), NOW)
    assert period_of(None, NOW - timedelta(days=1), REPORTS).start == NOW - timedelta(days=31)


@pytest.mark.parametrize(
    "start, end, field",
    [
        (NOW, NOW, "from"),
        (NOW + timedelta(seconds=1), NOW, "from"),
        (NOW - timedelta(days=367), NOW, "from"),
        (datetime(2025, 5, 1), NOW, "from"),  # noqa: DTZ001 - a naive time is the bad input
        (None, datetime(2025, 5, 1), "to"),  # noqa: DTZ001 - a naive time is the bad input
    ],
)
def test_bad_periods_name_the_field(start, end, field):
    with pytest.raises(Unprocessable) as caught:
        period_of(start, end, REPORTS)
    assert caught.value.extra["errors"][0]["field"] == field
