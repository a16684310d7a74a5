"""The Return state machine (docs/product.md §5): every transition from every status, and what each records."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.returns import domain, replacements
from services.returns.domain import ALLOWED, IllegalTransition
from services.returns.eligibility import open_return
from services.returns.policy import PolicyViolation
from services.returns.schemas import AuthorizeBody, CloseBody, ReceiveBody, RejectBody, ShipBody
from shared import marketplaces
from shared.marketplace_models import Marketplace
from shared.models import Actor, Breakdown, Fault, LabelType, Refund, RefundKind, RefundStatus, Return, ReturnStatus
from shared.money import Money
from tests.unit.returns.builders import BUYER, RULES, SELLER, make_order, make_request, policy

S = ReturnStatus
NOW = datetime(2025, 3, 7, 15, 0, tzinfo=UTC)  # a Friday
AGENT = Actor(role="agent", id="a-1")


def requested(*lines, **order_kwargs) -> Return:
    order = make_order(**order_kwargs)
    request = make_request(order, *(lines or (("L1", 2, "NO_LONGER_NEEDED"),)))
    return open_return(
        order,
        request,
        return_id="ret_1",
        policy=policy(),
        rules=RULES,
        already_returned={},
        buyer_flagged=False,
        actor=BUYER,
        now=NOW - timedelta(hours=1),
    )[0][1]


def refund(**changes) -> Refund:
    zero = Money.zero("USD")
    ret = requested()
    data = dict(
        refund_id="rf_1",
        kind=RefundKind.RETURN,
        return_id="ret_1",
        order_id=ret.order_id,
        marketplace="US",
        currency="USD",
        buyer=ret.buyer,
        seller=ret.seller,
        status=RefundStatus.ISSUED,
        version=2,
        amount=Money(amount=3000, currency="USD"),
        breakdown=Breakdown(
            items=zero,
            restocking_fee=zero,
            outbound_shipping=zero,
            return_shipping_concession=zero,
            other_concession=zero,
            total=zero,
        ),
        actor=Actor(role="platform", id="refunds"),
        issued_at=NOW,
        created_at=NOW,
        updated_at=NOW,
        attempts=1,
    )
    return Refund(**(data | changes))


def in_status(status: ReturnStatus) -> Return:
    ret = requested()
    return ret.model_copy(update={"status": status})


TRANSITIONS = {
    "authorize": lambda r: domain.authorize(r, AuthorizeBody(), SELLER, NOW, RULES),
    "reject": lambda r: domain.reject(r, RejectBody(reason_code="OTHER"), SELLER, NOW),
    "close": lambda r: domain.close(r, CloseBody(code="BUYER_WITHDREW"), BUYER, NOW),
    "ship": lambda r: domain.ship(r, ShipBody(carrier="UPS", tracking_number="1Z"), BUYER, NOW),
    "receive": lambda r: domain.receive(
        r, ReceiveBody(lines=[{"line_id": "L1", "quantity": 2, "condition": "sellable"}]), SELLER, NOW, RULES
    ),
    "expire": lambda r: domain.expire(r, NOW),
    "refund": lambda r: domain.mark_refunded(r, refund(), NOW),
    "remind": lambda r: domain.remind(r, NOW),
    "feedback": lambda r: domain.record_feedback(r, True, BUYER, NOW),
    "replace": lambda r: replacements.replace(r, NOW),
}
# Every legal move of the state machine, written out: (from, action, to). Anything not listed is a
# 409. Deliberately not read from `domain.ALLOWED`: adding or dropping a move there fails this test.
MOVES = {
    (S.REQUESTED, "authorize", S.AUTHORIZED),
    (S.REQUESTED, "reject", S.REJECTED),
    (S.REQUESTED, "close", S.CLOSED),
    (S.REQUESTED, "remind", S.REQUESTED),
    (S.AUTHORIZED, "ship", S.SHIPPED),
    (S.AUTHORIZED, "receive", S.RECEIVED),
    (S.AUTHORIZED, "close", S.CLOSED),
    (S.AUTHORIZED, "expire", S.EXPIRED),
    (S.AUTHORIZED, "refund", S.REFUNDED),  # a refund without return
    (S.SHIPPED, "receive", S.RECEIVED),
    (S.SHIPPED, "refund", S.REFUNDED),
    (S.RECEIVED, "refund", S.REFUNDED),
    # (S.RECEIVED, "feedback"): only while a replacement is awaited, not while the refund is to come
    (S.REFUNDED, "feedback", S.REFUNDED),
    (S.REJECTED, "feedback", S.REJECTED),
    (S.CLOSED, "feedback", S.CLOSED),
    (S.EXPIRED, "feedback", S.EXPIRED),
    (S.AUTHORIZED, "replace", S.REPLACED),  # returnless: the replacement shipped
    (S.RECEIVED, "replace", S.REPLACED),
    (S.REPLACED, "feedback", S.REPLACED),
}
LEGAL = {(start, action): end for start, action, end in MOVES}
# Neither a move nor a 409: a duplicate `return.refunded` changes nothing.
NO_OPS = {(S.REFUNDED, "refund")}


def test_the_moves_are_listed_once_each():
    assert len(LEGAL) == len(MOVES) and not NO_OPS & LEGAL.keys()


@pytest.mark.parametrize("action", sorted(TRANSITIONS))
@pytest.mark.parametrize("status", list(S))
def test_every_action_from_every_status(action, status):
    before = in_status(status)
    if (status, action) in LEGAL:
        after = TRANSITIONS[action](before)
        assert after.status == LEGAL[status, action]
        assert after.version == before.version + 1 and after.updated_at == NOW
        assert after.timeline[:-1] == before.timeline and after.timeline[-1].action == action
        assert after.timeline[-1].at == NOW and after.timeline[-1].status == after.status
    elif (status, action) in NO_OPS:
        assert TRANSITIONS[action](before) is None
    else:
        with pytest.raises(IllegalTransition):
            TRANSITIONS[action](before)


def test_the_code_has_no_action_this_test_does_not_try():
    # A new action in the code's table needs its moves above and a way to call it in TRANSITIONS.
    assert set(ALLOWED) == set(TRANSITIONS)


# ---- authorize ----------------------------------------------------------------------------


def test_authorize_defaults_who_pays_from_fault():
    buyer_fault = domain.authorize(requested(), AuthorizeBody(), SELLER, NOW, RULES)
    assert buyer_fault.authorization.return_shipping_paid_by == Fault.BUYER
    assert buyer_fault.authorization.label_type == LabelType.UNPAID
    assert buyer_fault.authorization.return_postage == Money(amount=899, currency="USD")
    seller_fault = domain.authorize(requested(("L1", 1, "DEFECTIVE")), AuthorizeBody(), SELLER, NOW, RULES)
    assert seller_fault.authorization.return_shipping_paid_by == Fault.SELLER
    assert seller_fault.authorization.label_type == LabelType.PREPAID
    assert seller_fault.authorized_at == NOW and seller_fault.ship_by == NOW + timedelta(days=30)
    assert seller_fault.responded_at == NOW and not seller_fault.authorization.automatic


def test_authorize_defaults_to_the_seller_paying_from_abroad():
    ret = domain.authorize(requested(return_country="CN"), AuthorizeBody(), SELLER, NOW, RULES)
    assert ret.authorization.return_shipping_paid_by == Fault.SELLER


def test_an_unpaid_label_the_seller_owes_carries_the_postage_as_a_concession():
    body = AuthorizeBody(label_type="unpaid", return_postage={"amount": 650, "currency": "USD"})
    ret = domain.authorize(requested(("L1", 1, "DEFECTIVE")), body, SELLER, NOW, RULES)
    assert ret.authorization.return_shipping_paid_by == Fault.SELLER
    assert ret.authorization.return_postage == Money(amount=650, currency="USD")


def test_a_prepaid_label_with_its_details():
    body = AuthorizeBody(label_type="prepaid", carrier="UPS", tracking_number="1Z9", label_url="https://l.example/1")
    auth = domain.authorize(requested(), body, SELLER, NOW, RULES).authorization
    assert (auth.carrier, auth.tracking_number, auth.label_url) == ("UPS", "1Z9", "https://l.example/1")
    assert auth.return_shipping_paid_by == Fault.SELLER  # a prepaid label is the seller's expense


@pytest.mark.parametrize(
    "ret_lines, body, field",
    [
        ((("L1", 1, "DEFECTIVE"),), {"return_shipping_paid_by": "buyer"}, "return_shipping_paid_by"),
        ((), {"label_type": "prepaid", "return_shipping_paid_by": "buyer"}, "label_type"),
        ((), {"returnless": True, "label_type": "unpaid"}, "label_type"),
        ((), {"return_postage": {"amount": 500, "currency": "EUR"}}, "return_postage.currency"),
    ],
)
def test_authorization_against_the_rules_is_refused_naming_the_field(ret_lines, body, field):
    with pytest.raises(PolicyViolation) as err:
        domain.authorize(requested(*ret_lines), AuthorizeBody(**body), SELLER, NOW, RULES)
    assert [p.field for p in err.value.problems] == [field]


def test_returnless_authorization_has_no_label_and_nothing_to_ship_receive_close_or_expire():
    ret = domain.authorize(requested(), AuthorizeBody(returnless=True), SELLER, NOW, RULES)
    assert ret.authorization.returnless and ret.authorization.label_type is None and ret.ship_by is None
    for action in ("ship", "receive", "close", "expire"):
        with pytest.raises(IllegalTransition):
            TRANSITIONS[action](ret)
    assert domain.mark_refunded(ret, refund(), NOW).status == S.REFUNDED


def test_platform_authorization_at_the_deadline_is_late_prepaid_at_the_sellers_expense():
    ret = domain.platform_authorize(requested(), NOW, RULES)
    auth = ret.authorization
    assert ret.status == S.AUTHORIZED and auth.automatic and auth.late
    assert auth.label_type == LabelType.PREPAID and auth.return_shipping_paid_by == Fault.SELLER
    assert ret.timeline[-1].actor == Actor(role="platform", id="returns")


# ---- reject, close ------------------------------------------------------------------------


def test_rejecting_an_in_policy_seller_fault_request_is_invalid():
    seller_fault = domain.reject(
        requested(("L1", 1, "DEFECTIVE")), RejectBody(reason_code="OTHER", note="no"), SELLER, NOW
    )
    assert seller_fault.rejection.invalid and seller_fault.rejection.reason_code == "OTHER"
    assert seller_fault.rejected_at == NOW and seller_fault.responded_at == NOW
    assert not domain.reject(requested(), RejectBody(reason_code="OTHER"), SELLER, NOW).rejection.invalid
    out_of_policy = requested(("L1", 1, "DEFECTIVE")).model_copy(update={"in_policy": False})
    assert not domain.reject(
        out_of_policy, RejectBody(reason_code="OUTSIDE_RETURN_WINDOW"), SELLER, NOW
    ).rejection.invalid


def test_close_records_the_closure_code():
    ret = domain.close(requested(), CloseBody(code="SETTLED_WITHOUT_RETURN", note="partial refund"), SELLER, NOW)
    assert ret.closure.code == "SETTLED_WITHOUT_RETURN" and ret.closed_at == NOW
    assert ret.timeline[-1].note == "partial refund" and ret.timeline[-1].actor == SELLER


# ---- ship, receive, expire ------------------------------------------------------------------


def authorized() -> Return:
    return domain.authorize(requested(("L1", 2, "DEFECTIVE")), AuthorizeBody(), SELLER, NOW - timedelta(days=1), RULES)


def test_ship_records_the_shipment_until_the_authorization_runs_out():
    ret = authorized()
    shipped = domain.ship(ret, ShipBody(carrier="USPS", tracking_number="94"), BUYER, NOW)
    assert shipped.shipment.carrier == "USPS" and shipped.shipped_at == NOW
    with pytest.raises(IllegalTransition):
        domain.ship(ret, ShipBody(carrier="USPS", tracking_number="94"), BUYER, ret.ship_by + timedelta(seconds=1))


def test_receive_sets_the_refund_deadline_in_business_days():
    ret = domain.receive(
        authorized(), ReceiveBody(lines=[{"line_id": "L1", "quantity": 1, "condition": "opened"}]), SELLER, NOW, RULES
    )  # Friday 10:00 New York
    assert ret.received_at == NOW
    local_due = ret.refund_due_at.astimezone(ZoneInfo("America/New_York"))
    assert (local_due.date().isoformat(), local_due.hour) == ("2025-03-11", 23)  # end of Tuesday, local
    assert [(r.line_id, r.quantity, r.condition) for r in ret.receipt.lines] == [("L1", 1, "opened")]


def with_bahrain() -> marketplaces.Marketplaces:
    """The shipped marketplaces and Bahrain (its calendar: a Friday-Saturday weekend)."""
    us = marketplaces.shipped()["US"].model_dump()
    bahrain = us | {"code": "BH", "name": "Bahrain", "currency": "BHD", "calendar_country": "BH", "country": ""}
    bahrain |= {"time_zone": "Asia/Bahrain"}
    return marketplaces.Marketplaces({**marketplaces.shipped(), "BH": Marketplace.model_validate(bahrain)})


@pytest.mark.parametrize(
    ("marketplace", "zone", "received", "due_day"),
    [
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
        # China works Sunday 28 September 2025 (a make-up day, 调休, for the National Day week):
        # Thursday 25 -> Friday 26, Sunday 28; Friday 26 -> Sunday 28, Monday 29.
        ("CN", "Asia/Shanghai", (2025, 9, 25, 10), (2025, 9, 28)),
        ("CN", "Asia/Shanghai", (2025, 9, 26, 10), (2025, 9, 29)),
        # The National Day holidays (1-8 October): Tuesday 30 September -> Thursday 9, Friday 10.
        ("CN", "Asia/Shanghai", (2025, 9, 30, 10), (2025, 10, 10)),
        # And the make-up Saturday 11 October: Thursday 9 -> Friday 10, Saturday 11.
        ("CN", "Asia/Shanghai", (2025, 10, 9, 10), (2025, 10, 11)),
    ],
)
def test_the_refund_deadline_skips_the_marketplaces_weekends_and_public_holidays(
    marketplace, zone, received, due_day, monkeypatch
):
    # The one place the rule lives: the refunds service reads the date from `return.received`.
    # BH is no shipped marketplace: a deployment serving it names it in its marketplaces file.
    monkeypatch.setattr(marketplaces, "_current", with_bahrain())
    at = datetime(*received, tzinfo=ZoneInfo(zone))
    ret = authorized().model_copy(update={"marketplace": marketplace})
    got = domain.receive(
        ret, ReceiveBody(lines=[{"line_id": "L1", "quantity": 2, "condition": "sellable"}]), SELLER, at, RULES
    )
    due_local = got.refund_due_at.astimezone(ZoneInfo(zone))
    assert due_local.date() == date(*due_day)
    assert (due_local.hour, due_local.minute) == (23, 59)  # any time on the last business day is on time


def test_the_refund_deadline_counts_days_in_the_marketplace_zone():
    # 03:30 UTC on Friday is still Thursday evening in New York: Friday and Monday are the two days.
    body = ReceiveBody(lines=[{"line_id": "L1", "quantity": 2, "condition": "sellable"}])
    got = domain.receive(authorized(), body, SELLER, datetime(2025, 3, 7, 3, 30, tzinfo=UTC), RULES)
    assert got.refund_due_at.astimezone(ZoneInfo("America/New_York")).date() == date(2025, 3, 10)
    assert got.refund_due_at.utcoffset().total_seconds() == 0


def test_the_refund_deadline_follows_the_marketplace_rules():
    body = ReceiveBody(lines=[{"line_id": "L1", "quantity": 2, "condition": "sellable"}])
    longer = dataclasses.replace(RULES, refund_business_days=5)
    got = domain.receive(authorized(), body, SELLER, NOW, longer)  # Friday -> five days: Friday next week
    assert got.refund_due_at.astimezone(ZoneInfo("America/New_York")).date() == date(2025, 3, 14)


@pytest.mark.parametrize(
    ("l1", "l2", "percents"),
    [
        ("opened", "used", ["15", "0"]),  # L2 is the seller's fault: never a fee
        ("damaged_by_buyer", "opened", ["15", "0"]),
        ("used", None, ["15", "0"]),  # L2 not listed: missing, no fee
        ("sellable", "sellable", ["0", "0"]),
        ("damaged_in_transit", "opened", ["0", "0"]),
        ("wrong_item", "opened", ["0", "0"]),
    ],
)
def test_receive_puts_the_restocking_fee_that_applies_on_each_received_line(l1, l2, percents):
    # The one place a fee is decided: the refunds service applies these percents as they are.
    order = make_order()
    request = make_request(order, ("L1", 2, "NO_LONGER_NEEDED"), ("L2", 1, "DEFECTIVE"))
    ret = open_return(
        order,
        request,
        return_id="ret_1",
        policy=policy(restocking_fee_percent=15),
        rules=RULES,
        already_returned={},
        buyer_flagged=False,
        actor=BUYER,
        now=NOW - timedelta(hours=1),
    )[0][1]
    ret = domain.authorize(ret, AuthorizeBody(), SELLER, NOW, RULES)
    lines = [{"line_id": "L1", "quantity": 2, "condition": l1}]
    if l2 is not None:
        lines.append({"line_id": "L2", "quantity": 1, "condition": l2})
    got = domain.receive(ret, ReceiveBody(lines=lines), SELLER, NOW, RULES)
    assert ret.policy.restocking_fee_percent == 15
    assert [(r.line_id, r.restocking_fee_percent) for r in got.receipt.lines] == [
        ("L1", Decimal(percents[0])),
        ("L2", Decimal(percents[1])),
    ]


def test_receive_records_unlisted_lines_as_missing():
    ret = domain.authorize(
        requested(("L1", 1, "DEFECTIVE"), ("L2", 1, "DEFECTIVE")), AuthorizeBody(), SELLER, NOW, RULES
    )
    got = domain.receive(
        ret, ReceiveBody(lines=[{"line_id": "L2", "quantity": 1, "condition": "sellable"}]), SELLER, NOW, RULES
    )
    assert [(r.line_id, r.quantity, r.condition) for r in got.receipt.lines] == [
        ("L2", 1, "sellable"),
        ("L1", 0, "missing"),
    ]


@pytest.mark.parametrize(
    "lines, field",
    [
        ([{"line_id": "L2", "quantity": 1, "condition": "sellable"}], "lines[0].line_id"),
        ([{"line_id": "L1", "quantity": 3, "condition": "sellable"}], "lines[0].quantity"),
        ([{"line_id": "L1", "quantity": 1, "condition": "missing"}], "lines[0].quantity"),
        (
            [
                {"line_id": "L1", "quantity": 1, "condition": "used"},
                {"line_id": "L1", "quantity": 1, "condition": "used"},
            ],
            "lines[1].line_id",
        ),
    ],
)
def test_receive_against_the_return_is_refused_naming_the_field(lines, field):
    with pytest.raises(PolicyViolation) as err:
        domain.receive(authorized(), ReceiveBody(lines=lines), SELLER, NOW, RULES)
    assert [p.field for p in err.value.problems] == [field]


def test_expire_is_the_platforms():
    ret = domain.expire(authorized(), NOW)
    assert ret.expired_at == NOW and ret.timeline[-1].actor.role == "platform"


def test_remind_keeps_the_status():
    ret = domain.remind(requested(), NOW)
    assert ret.status == S.REQUESTED and ret.timeline[-1].action == "remind"


# ---- feedback and refunds -------------------------------------------------------------------


def test_feedback_once():
    ret = domain.record_feedback(in_status(S.REFUNDED), False, BUYER, NOW)
    assert ret.feedback.resolved is False and ret.feedback.at == NOW and ret.status == S.REFUNDED
    with pytest.raises(IllegalTransition):
        domain.record_feedback(ret, True, BUYER, NOW)


def test_refunded_records_the_refund_once():
    ret = domain.mark_refunded(in_status(S.RECEIVED), refund(automatic=True), NOW)
    assert ret.refund.refund_id == "rf_1" and ret.refund.amount.amount == 3000 and ret.refund.automatic
    assert ret.refunded_at == NOW and ret.timeline[-1].actor.id == "refunds"
    assert domain.mark_refunded(ret, refund(), NOW) is None


def test_refund_failures_are_recorded_once_each():
    ret = domain.record_refund_failure(
        in_status(S.RECEIVED), refund(status="failed", failure_reason="card_declined"), NOW
    )
    assert ret.status == S.RECEIVED and ret.refund_failures == ["rf_1 attempt 1: card_declined"]
    assert domain.record_refund_failure(ret, refund(status="failed", failure_reason="card_declined"), NOW) is None
    again = domain.record_refund_failure(ret, refund(attempts=2, failure_reason="timeout"), NOW)
    assert len(again.refund_failures) == 2
