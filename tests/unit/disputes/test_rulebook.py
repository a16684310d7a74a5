"""Claim and chargeback rules per marketplace (design rule 7), and the settings that override them everywhere."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.disputes.eligibility import claim_problems, file_claim
from services.disputes.rulebook import DisputeRules
from services.disputes.schemas import ClaimRequest
from services.disputes.settings import Settings
from shared import marketplaces
from shared.marketplaces import MarketplaceConfigError, Marketplaces, UnknownMarketplace
from tests.unit.disputes.builders import BUYER, ORDERED, facts

# DE with the older marketplace rules: a week to answer, reminded two days before, a shorter window.
DE_RULES = """
extends: shipped
marketplaces:
  DE:
    claims: {window_days: 60, response_hours: 168, reminder_hours: 48, chargeback_evidence_days: 10}
"""
CURRENCY = {"US": "USD", "DE": "EUR"}


@pytest.fixture
def served(tmp_path: Path) -> Marketplaces:
    path = tmp_path / "marketplaces.yaml"
    path.write_text(DE_RULES)
    return marketplaces.load(path)


def settings(**overrides: Any) -> Settings:
    return Settings(jwt_secret="s" * 64, **overrides)


def claim_on(rules: DisputeRules, marketplace: str, days_after_order: int = 20) -> Any:
    order_facts = facts(marketplace=marketplace, currency=CURRENCY[marketplace])
    body = {
        "order_id": "o-1",
        "reason": "ITEM_NOT_RECEIVED",
        "amount": {"amount": 1500, "currency": CURRENCY[marketplace]},
    }
    now = ORDERED + timedelta(days=days_after_order)
    claim_rules = rules.claims(marketplace)
    return file_claim(
        order_facts, ClaimRequest.model_validate(body), [], claim_rules, claim_id="clm_1", actor=BUYER, now=now
    )


def test_a_claim_gets_the_response_time_of_its_orders_marketplace(served: Marketplaces) -> None:
    rules = DisputeRules.from_settings(settings(), served)
    de, us = claim_on(rules, "DE"), claim_on(rules, "US")
    assert de.marketplace == "DE" and de.respond_by - de.filed_at == timedelta(days=7)
    assert us.marketplace == "US" and us.respond_by - us.filed_at == timedelta(hours=72)


def test_the_claim_window_is_the_marketplaces(served: Marketplaces) -> None:
    rules = DisputeRules.from_settings(settings(), served)
    body = {"order_id": "o-1", "reason": "ITEM_NOT_RECEIVED"}
    day_70 = ORDERED + timedelta(days=70)
    de = ClaimRequest.model_validate(body | {"amount": {"amount": 1500, "currency": "EUR"}})
    us = ClaimRequest.model_validate(body | {"amount": {"amount": 1500, "currency": "USD"}})
    de_problems = claim_problems(facts(marketplace="DE", currency="EUR"), de, rules.claims("DE"), day_70)
    assert [p.field for p in de_problems] == ["order_id"] and "could be filed until" in de_problems[0].reason
    assert claim_problems(facts(), us, rules.claims("US"), day_70) == []  # 90 days on US


def test_a_setting_overrides_the_rule_in_every_marketplace(served: Marketplaces) -> None:
    rules = DisputeRules.from_settings(settings(claim_response_hours=36, claim_reminder_hours=6), served)
    for marketplace in ("DE", "US"):
        claim = claim_on(rules, marketplace)
        assert claim.respond_by - claim.filed_at == timedelta(hours=36)
        assert rules.claims(marketplace).reminder_lead == timedelta(hours=6)
    assert rules.claims("DE").window == timedelta(days=60)  # what is not overridden stays the marketplace's


def test_window_overrides_keep_their_units(served: Marketplaces) -> None:
    rules = DisputeRules.from_settings(settings(claim_opens_after_days=2, claim_window_days=10), served)
    assert rules.claims("DE").opens_after == rules.claims("US").opens_after == timedelta(days=2)
    assert rules.claims("DE").window == rules.claims("US").window == timedelta(days=10)


def test_an_override_that_breaks_a_marketplaces_rules_stops_the_service(served: Marketplaces) -> None:
    # US answers in 72 h: a 100-hour reminder lead would come before the claim was filed.
    with pytest.raises(MarketplaceConfigError, match="reminder_hours"):
        DisputeRules.from_settings(settings(claim_reminder_hours=100), served)


def test_an_unserved_marketplace_has_no_claim_rules(served: Marketplaces) -> None:
    with pytest.raises(UnknownMarketplace):
        DisputeRules.from_settings(settings(), served).claims("FR")


def test_chargeback_evidence_days_follow_the_orders_marketplace_else_the_default(served: Marketplaces) -> None:
    rules = DisputeRules.from_settings(settings(), served)
    assert (rules.evidence_days("DE"), rules.evidence_days("US")) == (10, 7)
    assert rules.evidence_days(None) == 7  # no known order: the default marketplace (US)
    assert rules.evidence_days("FR") == 7  # a marketplace no longer served: likewise
    assert DisputeRules.from_settings(settings(default_marketplace="DE"), served).evidence_days(None) == 10
    overridden = DisputeRules.from_settings(settings(chargeback_evidence_days=3), served)
    assert (overridden.evidence_days("DE"), overridden.evidence_days(None)) == (3, 3)


def test_one_reminder_sweep_when_every_marketplace_has_the_same_lead(served: Marketplaces) -> None:
    assert DisputeRules.from_settings(settings()).reminder_sweeps() == [(timedelta(hours=24), None)]
    overridden = DisputeRules.from_settings(settings(claim_reminder_hours=12), served)
    assert overridden.reminder_sweeps() == [(timedelta(hours=12), None)]


def test_a_reminder_sweep_per_lead_covering_every_claim_once(served: Marketplaces) -> None:
    sweeps = DisputeRules.from_settings(settings(), served).reminder_sweeps()
    # The default marketplace's sweep also takes claims of marketplaces no longer served.
    assert sweeps == [(timedelta(hours=24), {"$nin": ["DE"]}), (timedelta(hours=48), {"$in": ["DE"]})]
    de_default = DisputeRules.from_settings(settings(default_marketplace="DE"), served).reminder_sweeps()
    assert de_default == [
        (timedelta(hours=24), {"$in": ["CN", "GB", "JP", "US"]}),
        (timedelta(hours=48), {"$nin": ["CN", "GB", "JP", "US"]}),
    ]
