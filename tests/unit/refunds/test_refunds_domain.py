"""Refund deadline in business days, ids and keys, transitions and the events they announce."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.refunds import domain
from services.refunds.policy import return_refund
from shared.models import Actor, RefundKind, RefundStatus
from tests.unit.refunds.builders import make_order, make_return


def local(marketplace_zone: str, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(marketplace_zone))


@pytest.mark.parametrize(("marketplace", "zone", "received", "due_day"), [
    # Plain week: Tuesday -> Thursday.
    ("US", "America/New_York", (2025, 3, 4, 10), (2025, 3, 6)),
    # Over a weekend: Friday -> Tuesday.
    ("US", "America/New_York", (2025, 3, 7, 15), (2025, 3, 11)),
    # Thursday before Independence Day (Fri 4 July) and a weekend -> Tuesday 8 July.
    ("US", "America/New_York", (2025, 7, 3, 15), (2025, 7, 8)),
    # Received on the holiday itself counts from the next business day.
    ("US", "America/New_York", (2025, 12, 25, 9), (2025, 12, 29)),
    # Good Friday and England's Easter Monday: Thursday 17 April -> Wednesday 23 April.
    ("GB", "Europe/London", (2025, 4, 17, 11), (2025, 4, 23)),
    # Bahrain's weekend is Friday-Saturday: Wednesday 2 July -> Thursday 3, then Sunday 6 July
    # is Ashura, so Monday 7 July.
    ("BH", "Asia/Bahrain", (2025, 7, 2, 11), (2025, 7, 7)),
    # Golden Week: Friday 2 May, weekend, 5 May and the substitute holiday 6 May -> Thursday 8 May.
    ("JP", "Asia/Tokyo", (2025, 5, 2, 16), (2025, 5, 8)),
    # German Unity Day, Friday 3 October 2025.
    ("DE", "Europe/Berlin", (2025, 10, 2, 12), (2025, 10, 7)),
])
def test_refund_deadline_skips_weekends_and_public_holidays(marketplace, zone, received, due_day):
    due = domain.refund_due_at(local(zone, *received), marketplace, 2)
    due_local = due.astimezone(ZoneInfo(zone))
    assert due_local.date() == datetime(*due_day).date()
    assert (due_local.hour, due_local.minute) == (23, 59)  # any time on the second business day is on time


def test_days_are_counted_in_the_marketplace_zone():
    # 03:30 UTC on Friday is still Thursday evening in New York: Friday and Monday are the two days.
    due = domain.refund_due_at(datetime(2025, 3, 7, 3, 30, tzinfo=UTC), "US", 2)
    assert due.astimezone(ZoneInfo("America/New_York")).date() == datetime(2025, 3, 10).date()
    assert due.tzinfo is not None and due.utcoffset().total_seconds() == 0


def test_refund_ids_and_gateway_keys_are_stable():
    assert domain.return_refund_id("ret_1") == domain.return_refund_id("ret_1") != domain.return_refund_id("ret_2")
    assert domain.direct_refund_id("seller:s-1", "k") != domain.direct_refund_id("seller:s-2", "k")
    rid = domain.return_refund_id("ret_1")
    assert rid.startswith("rf_") and len(rid) == 35
    assert domain.gateway_key(rid, 0) == rid
    assert domain.gateway_key(rid, 1) != domain.gateway_key(rid, 2) != rid


NOW = datetime(2025, 7, 9, 12, tzinfo=UTC)


def due_refund(**kwargs):
    order = make_order()
    ret = make_return(order, ("L1", 2, "DEFECTIVE"), refund_mode="manual", **kwargs)
    breakdown = return_refund(ret, order.shipping_paid)
    return ret, domain.for_return(ret, breakdown, status=RefundStatus.DUE, actor=domain.PLATFORM, now=NOW,
                                  due_at=domain.refund_due_at(ret.received_at, "US"))


def test_a_due_refund_taken_over_by_the_platform_is_automatic_and_issues_both_events():
    ret, refund = due_refund()
    assert (refund.kind, refund.version, refund.amount.amount) == (RefundKind.RETURN, 1, 3000)
    assert domain.events(refund) == []  # a due refund announces nothing yet
    pending = domain.take_over(refund, NOW)
    assert (pending.status, pending.automatic, pending.actor, pending.version) == (
        RefundStatus.PENDING, True, domain.PLATFORM, 2)
    issued = domain.issue(pending, NOW, gateway="stripe", reference="re_1")
    events = domain.events(issued)
    # return.refunded is the return's next version: it follows the received return's own events.
    assert [(e.type, e.subject, e.sequence) for e in events] == [
        ("refund.issued", refund.refund_id, 3), ("return.refunded", ret.return_id, ret.version + 1)]
    assert events[0].data["amount"] == {"amount": 3000, "currency": "USD"}
    assert events[0].data["breakdown"]["items"]["amount"] == 3000
    assert domain.events(issued)[0].id == events[0].id  # the same state announces the same event id


def test_sellers_refund_replaces_a_due_or_failed_one_never_an_issued_one():
    ret, refund = due_refund()
    order = make_order()
    seller = Actor(role="seller", id="s-1")
    partial = return_refund(make_return(order, ("L1", 1, "DEFECTIVE")), order.shipping_paid)
    replaced = domain.replace(refund, partial, seller, NOW)
    assert (replaced.status, replaced.amount.amount, replaced.actor, replaced.automatic) == (
        RefundStatus.PENDING, 1500, seller, False)
    failed = domain.fail(replaced, NOW, gateway="stripe", reason="gateway unavailable")
    assert [e.type for e in domain.events(failed)] == ["refund.failed"]
    again = domain.replace(failed, partial, seller, NOW)
    assert again.failure_reason is None and again.status == RefundStatus.PENDING
    issued = domain.issue(again, NOW, gateway="stripe", reference="re_2")
    for action in (lambda: domain.replace(issued, partial, seller, NOW), lambda: domain.retry(issued, NOW),
                   lambda: domain.take_over(issued, NOW),
                   lambda: domain.issue(issued, NOW, gateway="x", reference=None)):
        with pytest.raises(domain.IllegalTransition):
            action()


def test_only_a_failed_refund_can_be_retried():
    _, refund = due_refund()
    with pytest.raises(domain.IllegalTransition):
        domain.retry(refund, NOW)
    failed = domain.fail(domain.take_over(refund, NOW), NOW, gateway="stripe", reason="timeout")
    assert domain.retry(failed, NOW).status == RefundStatus.PENDING
