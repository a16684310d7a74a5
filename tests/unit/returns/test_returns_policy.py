"""The marketplace rules and seller policy (docs/product.md §3–4)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.returns.policy import (
    DEFAULT_RULES,
    MarketplaceRules,
    SellerPolicy,
    check_policy,
    days_since_delivery,
    fault_of,
    in_window,
    invalid_rejection,
    is_high_value,
    is_whole_order,
    may_auto_authorize,
    overall_fault,
    qualifies_for_returnless,
    restocking_fee_percent,
    return_shipping_payer,
    seller_must_pay_shipping,
)
from services.returns.rulebook import RuleBook
from services.returns.settings import Settings
from shared.marketplaces import shipped
from shared.models import Fault, ItemCondition, PolicySnapshot, ReasonCode, ReturnLine
from shared.money import Money
from tests.unit.returns.builders import RULES, make_order, policy


def line(
    amount: int = 1000,
    quantity: int = 1,
    reason: ReasonCode = ReasonCode.NO_LONGER_NEEDED,
    currency: str = "USD",
    line_id: str = "L1",
) -> ReturnLine:
    return ReturnLine(
        line_id=line_id,
        sku="S",
        title="T",
        category="kitchen",
        quantity=quantity,
        unit_price=Money(amount=amount, currency=currency),
        reason_code=reason,
        fault=fault_of(reason),
    )


# ---- seller policy against the marketplace minimums ------------------------------------------


def test_default_policy_meets_the_minimums():
    assert check_policy(policy(), RULES) == []


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"return_window_days": 29}, "return_window_days"),
        ({"category_window_days": {"shoes": 20}}, "category_window_days.shoes"),
        ({"category_window_days": {"gift_cards": 60}}, "category_window_days.gift_cards"),
        ({"restocking_fee_percent": Decimal("50.01")}, "restocking_fee_percent"),
        ({"returnless_threshold": Money(amount=-1, currency="USD")}, "returnless_threshold.amount"),
    ],
)
def test_a_policy_weaker_than_the_marketplace_is_refused_naming_the_field(changes, field):
    assert [p.field for p in check_policy(policy(**changes), RULES)] == [field]


def test_a_policy_may_be_more_generous():
    generous = policy(
        return_window_days=60,
        category_window_days={"shoes": 90},
        restocking_fee_percent=Decimal(50),
        auto_authorize=True,
        returnless_threshold=Money(amount=1000, currency="USD"),
    )
    assert check_policy(generous, RULES) == []


def test_policy_input_is_strict():
    for bad in (
        {"return_window_days": "45"},
        {"auto_authorize": "yes"},
        {"category_window_days": {"a.b": 40}},
        {"refund_mode": "sometimes"},
        {"surprise": 1},
    ):
        with pytest.raises(ValidationError):
            SellerPolicy.model_validate(bad)


def test_durations_from_the_environment_in_seconds_or_iso(monkeypatch):
    monkeypatch.setenv("RESPONSE_DEADLINE", "PT2H")
    monkeypatch.setenv("REMINDER_LEAD", "600")
    monkeypatch.setenv("JOB_INTERVAL", "0.5")
    settings = Settings()
    assert settings.response_deadline == timedelta(hours=2) and settings.reminder_lead == timedelta(minutes=10)
    assert settings.job_interval == timedelta(milliseconds=500) and settings.port == 8001


def test_the_marketplace_rules_as_shipped():
    # docs/product.md §3; the settings' defaults and a seller's default window are these, not copies.
    assert (
        DEFAULT_RULES.return_window_days,
        DEFAULT_RULES.response_deadline,
        DEFAULT_RULES.reminder_lead,
        DEFAULT_RULES.authorization_validity,
        DEFAULT_RULES.refund_business_days,
        DEFAULT_RULES.max_restocking_fee_percent,
    ) == (30, timedelta(hours=48), timedelta(hours=12), timedelta(days=30), 2, Decimal(50))
    # The US profile is these rules exactly (US orders behave as before marketplaces); no setting overrides it.
    assert RuleBook.from_settings(Settings(), shipped()).rules_for("US") == DEFAULT_RULES
    assert MarketplaceRules.of(shipped()["US"]) == DEFAULT_RULES
    assert SellerPolicy().return_window_days is None  # the marketplace's window


def test_the_restocking_fee_cap_comes_from_settings():
    rules = RuleBook.from_settings(Settings(max_restocking_fee_percent=Decimal(20)), shipped()).rules_for("US")
    assert [p.field for p in check_policy(policy(restocking_fee_percent=Decimal("20.5")), rules)] == [
        "restocking_fee_percent"
    ]
    assert check_policy(policy(restocking_fee_percent=Decimal(20)), rules) == []


def test_settings_override_the_rules_of_every_marketplace():
    settings = Settings(
        return_window_days=45, response_deadline=timedelta(seconds=5), reminder_lead=timedelta(seconds=1)
    )
    book = RuleBook.from_settings(settings, shipped())
    for code in ("US", "GB", "DE", "JP", "CN"):
        rules = book.rules_for(code)
        assert rules.return_window_days == rules.minimum_window_days == 45, code
        assert rules.response_deadline == timedelta(seconds=5) and rules.reminder_lead == timedelta(seconds=1)
        assert rules.window_for(seller_fault=True) == 45  # CN's 15-day quality window is shorter: it gives way
    assert "gift_cards" in book.rules_for("US").non_returnable_categories
    # What is not overridden stays each marketplace's own.
    assert book.rules_for("CN").max_restocking_fee_percent == 0 and book.rules_for("DE").withdrawal_days == 14
    assert RuleBook.from_settings(Settings(), shipped()).rules_for("CN").window_for(seller_fault=True) == 15


# ---- the window, in the marketplace's local days -----------------------------------------------


def test_window_counts_local_days_day_30_is_the_last():
    order = make_order()  # delivered Mon 2025-03-03 15:00 New York
    item = order.lines[0]
    last_minute = datetime(2025, 4, 2, 23, 59, tzinfo=UTC) + timedelta(hours=4)  # Apr 2 23:59 EDT
    assert days_since_delivery(order.delivered_at, last_minute, "US") == 30
    assert in_window(order, item, policy(), RULES, last_minute)
    assert not in_window(order, item, policy(), RULES, last_minute + timedelta(minutes=2))  # day 31


def test_a_late_evening_delivery_counts_from_the_local_day_not_the_utc_day():
    # 23:30 New York on Mar 3 is already Mar 4 in UTC; the window still ends on Apr 2 local.
    order = make_order(delivered_at=datetime(2025, 3, 4, 4, 30, tzinfo=UTC))
    item = order.lines[0]
    assert in_window(order, item, policy(), RULES, datetime(2025, 4, 3, 2, 0, tzinfo=UTC))  # Apr 2 22:00 EDT
    assert not in_window(order, item, policy(), RULES, datetime(2025, 4, 3, 4, 30, tzinfo=UTC))  # Apr 3 00:30 EDT


def test_window_in_tokyo_days():
    order = make_order(
        marketplace="JP", currency="JPY", delivered_at=datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
    )  # 23:00 JST
    item = order.lines[0]
    assert in_window(order, item, policy(), RULES, datetime(2025, 4, 2, 14, 59, tzinfo=UTC))  # Apr 2 23:59 JST
    assert not in_window(order, item, policy(), RULES, datetime(2025, 4, 2, 15, 0, tzinfo=UTC))


def test_seller_extension_and_category_windows():
    order = make_order()
    mug, lamp = order.lines  # kitchen, home
    day_45 = order.delivered_at + timedelta(days=45)
    assert not in_window(order, mug, policy(), RULES, day_45)
    assert in_window(order, mug, policy(return_window_days=45), RULES, day_45)
    assert not in_window(order, mug, policy(return_window_days=45), RULES, day_45 + timedelta(days=1))
    by_category = policy(category_window_days={"home": 60})
    assert in_window(order, lamp, by_category, RULES, day_45) and not in_window(order, mug, by_category, RULES, day_45)


def test_nothing_is_in_window_before_delivery():
    order = make_order()
    assert not in_window(order, order.lines[0], policy(), RULES, order.delivered_at - timedelta(days=1))


# ---- fault and who pays return shipping ---------------------------------------------------------


def test_fault_is_the_sellers_as_soon_as_one_line_is():
    assert overall_fault([line()]) == Fault.BUYER
    assert overall_fault([line(), line(reason=ReasonCode.DEFECTIVE)]) == Fault.SELLER


@pytest.mark.parametrize("reason", list(ReasonCode))
def test_every_reason_has_its_fault(reason):
    buyer_reasons = {"NO_LONGER_NEEDED", "ORDERED_BY_MISTAKE", "BETTER_PRICE_FOUND", "DONT_KNOW_HOW_TO_USE"}
    assert fault_of(reason) == (Fault.BUYER if reason.value in buyer_reasons else Fault.SELLER)


@pytest.mark.parametrize(
    "fault, country, chooses, payer",
    [
        (Fault.BUYER, "US", False, Fault.BUYER),
        (Fault.SELLER, "US", False, Fault.SELLER),
        (Fault.BUYER, "CN", False, Fault.SELLER),  # return address outside the marketplace's country
        (Fault.BUYER, "US", True, Fault.SELLER),  # the seller chooses to pay
    ],
)
def test_who_pays_return_shipping(fault, country, chooses, payer):
    assert return_shipping_payer(fault, country, "US", chooses) == payer
    assert seller_must_pay_shipping(fault, country, "US") == (fault == Fault.SELLER or country != "US")


def test_gb_marketplace_country_is_gb():
    # The GB profile's calendar is England's (GB-ENG); its addresses are GB ones.
    assert not seller_must_pay_shipping(Fault.BUYER, "GB", "GB")
    assert seller_must_pay_shipping(Fault.BUYER, "DE", "GB")


# ---- the restocking fee ----------------------------------------------------------------------


@pytest.mark.parametrize("condition", list(ItemCondition))
@pytest.mark.parametrize("fault", list(Fault))
def test_a_restocking_fee_applies_only_when_the_buyer_is_at_fault_and_the_item_came_back_worn(fault, condition):
    worn = {"opened", "used", "damaged_by_buyer"}
    snapshot = PolicySnapshot(refund_mode="auto", restocking_fee_percent=Decimal("12.5"))
    expected = Decimal("12.5") if fault == Fault.BUYER and condition.value in worn else Decimal(0)
    assert restocking_fee_percent(fault, condition, snapshot, RULES) == expected


@pytest.mark.parametrize(
    ("snapshot", "cap", "applied"),
    [
        ("50", "50", "50"),
        ("80", "50", "50"),  # a return snapshot above the cap (a policy stored before the cap was lowered)
        ("40", "30", "30"),  # the cap of this deployment, not a literal
        ("0", "50", "0"),
    ],
)
def test_the_fee_applied_at_receipt_never_exceeds_the_marketplace_cap(snapshot, cap, applied):
    rules = dataclasses.replace(RULES, max_restocking_fee_percent=Decimal(cap))
    policy_snapshot = PolicySnapshot(refund_mode="auto", restocking_fee_percent=Decimal(snapshot))
    assert restocking_fee_percent(Fault.BUYER, ItemCondition.USED, policy_snapshot, rules) == Decimal(applied)


# ---- automatic decisions --------------------------------------------------------------------


def test_high_value_items_are_those_priced_above_the_cap():
    assert not is_high_value(line(amount=50000), RULES)
    assert is_high_value(line(amount=50001), RULES)
    # No cap for the currency (a foreign-currency order): its value is unknown, the seller decides.
    assert is_high_value(line(amount=1, currency="EUR"), RULES)


def test_auto_authorization_needs_the_option_in_policy_no_flag_and_no_high_value_item():
    on = policy(auto_authorize=True).snapshot()
    cheap = [line(), line(amount=50000, line_id="L2")]
    assert may_auto_authorize(cheap, on, in_policy=True, buyer_flagged=False, rules=RULES)
    assert not may_auto_authorize(cheap, policy().snapshot(), in_policy=True, buyer_flagged=False, rules=RULES)
    assert not may_auto_authorize(cheap, on, in_policy=False, buyer_flagged=False, rules=RULES)
    assert not may_auto_authorize(cheap, on, in_policy=True, buyer_flagged=True, rules=RULES)
    assert not may_auto_authorize([line(), line(amount=50001)], on, in_policy=True, buyer_flagged=False, rules=RULES)


def test_returnless_when_every_line_is_at_or_under_the_threshold():
    snap = policy(returnless_threshold=Money(amount=1000, currency="USD")).snapshot()
    assert qualifies_for_returnless([line(1000), line(500, quantity=2)], snap, in_policy=True, buyer_flagged=False)
    assert not qualifies_for_returnless([line(1000), line(1001)], snap, in_policy=True, buyer_flagged=False)
    assert not qualifies_for_returnless([line(600, quantity=2)], snap, in_policy=True, buyer_flagged=False)
    assert not qualifies_for_returnless([line(100)], snap, in_policy=True, buyer_flagged=True)
    assert not qualifies_for_returnless([line(100)], snap, in_policy=False, buyer_flagged=False)
    assert not qualifies_for_returnless([line(100, currency="JPY")], snap, in_policy=True, buyer_flagged=False)
    assert not qualifies_for_returnless([line(100)], policy().snapshot(), in_policy=True, buyer_flagged=False)


def test_invalid_rejection_is_an_in_policy_seller_fault_request():
    assert invalid_rejection(True, Fault.SELLER)
    assert not invalid_rejection(True, Fault.BUYER)
    assert not invalid_rejection(False, Fault.SELLER)


def test_whole_order_counts_earlier_returns():
    order = make_order()  # L1 x3, L2 x1
    assert not is_whole_order(order, [line(quantity=3)], {})
    assert is_whole_order(order, [line(quantity=1)], {"L1": 2, "L2": 1})
    assert is_whole_order(order, [line(quantity=3), line(line_id="L2")], {})
