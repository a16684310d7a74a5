"""The return rules of each shipped marketplace (docs/product.md §13): windows in local days, the
statutory minimum, CN's no-reason and quality windows and excluded categories, withdrawal, insurance."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.returns import domain
from services.returns.eligibility import check_request, open_return
from services.returns.policy import SellerPolicy, check_policy, default_policy
from services.returns.rulebook import RuleBook
from services.returns.schemas import AuthorizeBody, ReceiveBody
from shared.marketplaces import UnknownMarketplace, load, shipped
from shared.models import Fault, Order, RefundDestination, Return
from shared.money import Money
from tests.unit.returns.builders import BUYER, SELLER, make_order, make_request

BOOK = RuleBook(shipped())  # the shipped profiles, whatever the environment overrides
CURRENCY = {"US": "USD", "GB": "GBP", "DE": "EUR", "JP": "JPY", "CN": "CNY"}
ZONE = {
    "US": "America/New_York",
    "GB": "Europe/London",
    "DE": "Europe/Berlin",
    "JP": "Asia/Tokyo",
    "CN": "Asia/Shanghai",
}


def delivered_order(code: str, *, category: str = "kitchen", insured: bool = False, hour: int = 12) -> Order:
    """Delivered on Monday 3 March 2025 at `hour` local time of the marketplace."""
    at = datetime(2025, 3, 3, hour, tzinfo=ZoneInfo(ZONE[code]))
    lines = [{"line_id": "L1", "category": category, "quantity": 2, "return_shipping_insurance": insured}]
    return make_order(marketplace=code, currency=CURRENCY[code], delivered_at=at, lines=lines)


def local(code: str, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """`day` days after delivery (3 March), at that local time of the marketplace (DST included)."""
    return datetime.combine(date(2025, 3, 3) + timedelta(days=day), time(hour, minute, second), ZoneInfo(ZONE[code]))


def problems(order: Order, reason: str, now: datetime, policy: SellerPolicy | None = None) -> dict[str, str]:
    rules = BOOK.rules_for(order.marketplace)
    request = make_request(order, ("L1", 1, reason))
    found = check_request(order, request, policy or default_policy(rules), rules, {}, now)
    return {p.field: p.reason for p in found}


def opened(order: Order, reason: str, now: datetime, policy: SellerPolicy | None = None) -> Return:
    rules = BOOK.rules_for(order.marketplace)
    [(_, ret)] = open_return(
        order,
        make_request(order, ("L1", 1, reason)),
        return_id="ret_1",
        policy=policy or default_policy(rules),
        rules=rules,
        already_returned={},
        buyer_flagged=False,
        actor=BUYER,
        now=now,
    )
    return ret


# ---- the window, to the local midnight --------------------------------------------------------


@pytest.mark.parametrize(("code", "window"), [("US", 30), ("DE", 14), ("JP", 30), ("CN", 7)])
def test_the_no_reason_window_ends_at_the_marketplaces_local_midnight(code, window):
    # Delivered late in the local evening: the day still counts as the local day (not the UTC one).
    order = delivered_order(code, hour=23)
    assert problems(order, "NO_LONGER_NEEDED", local(code, window, 23, 59, 59)) == {}
    late = problems(order, "NO_LONGER_NEEDED", local(code, window + 1, 0, 0, 0))
    assert late == {"lines[0].line_id": f"the {window}-day return window closed ({window + 1} days since delivery)"}


@pytest.mark.parametrize(("code", "quality"), [("US", 30), ("DE", 14), ("JP", 30), ("CN", 15)])
def test_the_quality_window_ends_at_the_marketplaces_local_midnight(code, quality):
    order = delivered_order(code, hour=0)
    assert problems(order, "DEFECTIVE", local(code, quality, 23, 59, 59)) == {}
    assert list(problems(order, "DEFECTIVE", local(code, quality + 1, 0, 0, 0))) == ["lines[0].line_id"]


def test_cn_no_reason_on_day_7_not_8_and_defective_on_day_15_not_16():
    order = delivered_order("CN")
    assert problems(order, "NO_LONGER_NEEDED", local("CN", 7, 20)) == {}
    assert "7-day return window closed" in problems(order, "ORDERED_BY_MISTAKE", local("CN", 8, 9))["lines[0].line_id"]
    assert problems(order, "DEFECTIVE", local("CN", 8, 9)) == {}
    assert problems(order, "NOT_AS_DESCRIBED", local("CN", 15, 20)) == {}
    assert "15-day return window closed" in problems(order, "DEFECTIVE", local("CN", 16, 9))["lines[0].line_id"]


def test_a_sellers_longer_window_counts_for_every_reason():
    order = delivered_order("CN")
    generous = SellerPolicy(return_window_days=20)
    assert problems(order, "NO_LONGER_NEEDED", local("CN", 20, 12), generous) == {}
    assert problems(order, "DEFECTIVE", local("CN", 20, 12), generous) == {}  # never shorter than no-reason
    assert list(problems(order, "DEFECTIVE", local("CN", 21, 12), generous)) == ["lines[0].line_id"]


# ---- seller policy against its marketplace ----------------------------------------------------


def test_a_10_day_window_on_de_is_refused_with_the_statutory_minimum():
    de = BOOK.rules_for("DE")
    found = check_policy(SellerPolicy(return_window_days=10), de)
    assert [(p.field, p.reason) for p in found] == [
        ("return_window_days", "must be at least the marketplace's 14 days (DE)")
    ]
    assert [p.field for p in check_policy(SellerPolicy(category_window_days={"toys": 13}), de)] == [
        "category_window_days.toys"
    ]
    assert check_policy(SellerPolicy(return_window_days=14), de) == []
    assert check_policy(SellerPolicy(), de) == []  # no window of its own: the marketplace's
    # The same 14 days is too short for the US, and CN allows no restocking fee at all.
    assert [p.field for p in check_policy(SellerPolicy(return_window_days=14), BOOK.rules_for("US"))] == [
        "return_window_days"
    ]
    assert [p.field for p in check_policy(SellerPolicy(restocking_fee_percent=Decimal(5)), BOOK.rules_for("CN"))] == [
        "restocking_fee_percent"
    ]


def test_a_policy_without_a_window_takes_each_marketplaces_own():
    assert default_policy(BOOK.rules_for("DE")).return_window_days == 14
    order = delivered_order("DE")
    assert list(problems(order, "NO_LONGER_NEEDED", local("DE", 15, 12), SellerPolicy())) == ["lines[0].line_id"]


# ---- categories ------------------------------------------------------------------------------


@pytest.mark.parametrize("category", ["fresh_food", "custom_made", "opened_digital_goods"])
def test_cn_categories_excluded_from_no_reason_returns_pass_for_a_quality_problem(category):
    order = delivered_order("CN", category=category)
    assert problems(order, "NO_LONGER_NEEDED", local("CN", 1, 12)) == {
        "lines[0].reason_code": f"items in category {category!r} can only be returned for a quality problem"
    }
    assert problems(order, "DEFECTIVE", local("CN", 1, 12)) == {}
    lifted = make_request(order, ("L1", 1, "NO_LONGER_NEEDED"), policy_exception=True)
    rules = BOOK.rules_for("CN")
    assert check_request(order, lifted, default_policy(rules), rules, {}, local("CN", 1, 12)) == []


def test_other_marketplaces_take_no_reason_returns_of_those_categories():
    assert problems(delivered_order("US", category="fresh_food"), "NO_LONGER_NEEDED", local("US", 1, 12)) == {}


def test_non_returnable_categories_per_marketplace():
    # sealed_hygiene is not returnable in GB and DE, but is in the US.
    de = problems(delivered_order("DE", category="sealed_hygiene"), "DEFECTIVE", local("DE", 1, 12))
    assert de == {"lines[0].line_id": "items in category 'sealed_hygiene' are not returnable"}
    assert problems(delivered_order("US", category="sealed_hygiene"), "DEFECTIVE", local("US", 1, 12)) == {}


# ---- withdrawal: no restocking fee -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "day", "withdrawal"),
    [
        ("DE", "NO_LONGER_NEEDED", 14, True),
        ("GB", "ORDERED_BY_MISTAKE", 0, True),
        ("DE", "NO_LONGER_NEEDED", 15, False),  # within the seller's longer window, after the statutory period
        ("DE", "DEFECTIVE", 3, False),  # a quality problem is no withdrawal (and never bore a fee)
        ("US", "NO_LONGER_NEEDED", 3, False),  # no statutory withdrawal in the US
    ],
)
def test_a_buyer_fault_return_within_the_statutory_period_is_a_withdrawal(code, reason, day, withdrawal):
    ret = opened(delivered_order(code), reason, local(code, day, 23, 59), SellerPolicy(return_window_days=30))
    assert ret.withdrawal is withdrawal


def received_opened_item(code: str, day: int) -> Decimal:
    """The restocking fee kept on an opened item of a buyer-fault return asked on `day`, under a 20 % policy."""
    rules = BOOK.rules_for(code)
    policy = SellerPolicy(return_window_days=30, restocking_fee_percent=Decimal(20))
    asked = local(code, day, 12)
    ret = opened(delivered_order(code), "NO_LONGER_NEEDED", asked, policy)
    ret = domain.authorize(ret, AuthorizeBody(), SELLER, asked, rules)
    body = ReceiveBody(lines=[{"line_id": "L1", "quantity": 1, "condition": "opened"}])
    receipt = domain.receive(ret, body, SELLER, asked + timedelta(days=3), rules).receipt
    assert receipt is not None
    return receipt.lines[0].restocking_fee_percent


def test_a_withdrawal_bears_no_restocking_fee_whatever_the_policy():
    assert received_opened_item("DE", 10) == 0
    assert received_opened_item("DE", 20) == 20  # past the 14 days: the seller's extended window, fee allowed
    assert received_opened_item("US", 10) == 20


@pytest.mark.parametrize("day", [3, 20])
def test_a_defective_item_beside_a_withdrawn_one_keeps_the_withdrawal(day):
    """GB, DE: each buyer-fault line asked within the 14 days is withdrawn, whatever the others' reasons."""
    rules = BOOK.rules_for("DE")
    lines = [{"line_id": line_id, "category": "kitchen", "quantity": 1} for line_id in ("L1", "L2")]
    order = make_order(marketplace="DE", currency="EUR", delivered_at=local("DE", 0, 12), lines=lines)
    policy = SellerPolicy(return_window_days=30, restocking_fee_percent=Decimal(20))
    asked = local("DE", day, 12)
    [(_, ret)] = open_return(
        order,
        make_request(order, ("L1", 1, "NO_LONGER_NEEDED"), ("L2", 1, "DEFECTIVE")),
        return_id="ret_1",
        policy=policy,
        rules=rules,
        already_returned={},
        buyer_flagged=False,
        actor=BUYER,
        now=asked,
    )
    assert ret.fault == Fault.SELLER and ret.withdrawal is (day <= 14)
    ret = domain.authorize(ret, AuthorizeBody(), SELLER, asked, rules)
    opened_both = [{"line_id": line_id, "quantity": 1, "condition": "opened"} for line_id in ("L1", "L2")]
    receipt = domain.receive(ret, ReceiveBody(lines=opened_both), SELLER, asked + timedelta(days=3), rules).receipt
    assert receipt is not None
    fees = {line.line_id: line.restocking_fee_percent for line in receipt.lines}
    assert fees == ({"L1": 0, "L2": 0} if day <= 14 else {"L1": 20, "L2": 0})


# ---- return-shipping insurance -----------------------------------------------------------------


def authorization(code: str, reason: str = "NO_LONGER_NEEDED", *, insured: bool = True, **body):
    order = delivered_order(code, insured=insured)
    ret = opened(order, reason, local(code, 2, 12))
    return domain.authorize(ret, AuthorizeBody(**body), SELLER, local(code, 2, 13), BOOK.rules_for(code))


def test_an_insured_cn_return_the_buyer_ships_has_its_postage_insured():
    ret = authorization("CN")
    assert ret.lines[0].return_shipping_insurance
    auth = ret.authorization
    assert auth.return_shipping_paid_by == Fault.BUYER
    assert auth.insured_return_postage == auth.return_postage == Money(amount=1200, currency="CNY")  # CN default
    named = authorization("CN", return_postage={"amount": 800, "currency": "CNY"}).authorization
    assert named.insured_return_postage == Money(amount=800, currency="CNY")  # the label's own postage


@pytest.mark.parametrize(
    ("code", "reason", "insured", "body"),
    [
        ("CN", "NO_LONGER_NEEDED", False, {}),  # the line was not insured
        ("CN", "DEFECTIVE", True, {}),  # the seller pays return shipping: nothing to insure
        ("CN", "NO_LONGER_NEEDED", True, {"returnless": True}),  # nothing is shipped
        ("US", "NO_LONGER_NEEDED", True, {}),  # the US offers no insurance: the flag is not honoured
    ],
)
def test_no_insured_postage_otherwise(code, reason, insured, body):
    ret = authorization(code, reason, insured=insured, **body)
    assert ret.authorization.insured_return_postage is None
    assert ret.lines[0].return_shipping_insurance is (insured and code == "CN")


# ---- resolutions and deadlines per marketplace ----------------------------------------------


def test_cn_offers_no_store_credit():
    order = delivered_order("CN")
    request = make_request(order, ("L1", 1, "DEFECTIVE")).model_copy(
        update={"refund_to": RefundDestination.STORE_CREDIT}
    )
    rules = BOOK.rules_for("CN")
    found = check_request(order, request, default_policy(rules), rules, {}, local("CN", 1, 12))
    assert [p.field for p in found] == ["refund_to"]
    us = delivered_order("US")
    assert (
        check_request(
            us,
            request.model_copy(update={"order_id": us.order_id}),
            SellerPolicy(),
            BOOK.rules_for("US"),
            {},
            local("US", 1, 12),
        )
        == []
    )


def test_authorization_validity_is_the_marketplaces():
    for code, days in (("US", 30), ("DE", 14), ("CN", 7)):
        ret = authorization(code, "DEFECTIVE")
        assert ret.ship_by == local(code, 2, 13) + timedelta(days=days), code


def test_deadlines_and_offer_validity_follow_a_marketplaces_file(tmp_path: Path):
    path = tmp_path / "marketplaces.yaml"
    path.write_text(
        "extends: shipped\n"
        "marketplaces:\n"
        "  JP:\n"
        "    returns: {response_deadline_hours: 24, reminder_lead_hours: 6, refund_business_days: 5}\n"
        "    resolutions: {offer_validity_hours: 24, replacements_allowed: false}\n",
        encoding="utf-8",
    )
    book = RuleBook(load(path))
    jp, us = book.rules_for("JP"), book.rules_for("US")
    assert (jp.response_deadline, jp.reminder_lead, jp.offer_validity) == (
        timedelta(hours=24),
        timedelta(hours=6),
        timedelta(hours=24),
    )
    assert (us.response_deadline, us.reminder_lead, us.offer_validity) == (
        timedelta(hours=48),
        timedelta(hours=12),
        timedelta(hours=72),
    )
    assert jp.refund_business_days == 5 and not jp.replacements_allowed and us.replacements_allowed
    # The deadline job queries once per distinct reminder lead.
    assert book.reminder_leads() == {timedelta(hours=6): {"JP"}, timedelta(hours=12): {"US", "GB", "DE", "CN"}}


def test_an_unknown_marketplace_has_no_rules():
    with pytest.raises(UnknownMarketplace) as refused:
        BOOK.rules_for("XX")
    assert [p.field for p in refused.value.problems] == ["marketplace"]
