"""Metrics under the marketplaces' rules (docs/product.md §13): the return postage shipping insurance
refunded, summed per currency apart from the refunded amounts, in the seller report and the overview;
and the order defect rate counting each claim by its marketplace's `claims.odr_claims_counted`,
which ODR_CLAIMS_COUNTED overrides everywhere when set."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from services.metrics.defects import BY_MARKETPLACE, ClaimsCountedRule, order_defects, window_ending
from services.metrics.dispute_facts import claim_fact
from services.metrics.facts import delivery_fact, refund_fact, refund_from_document, to_document
from services.metrics.figures import Period, overview, seller_metrics
from services.metrics.settings import Settings
from shared import marketplaces
from shared.models import RefundStatus
from shared.money import Money
from tests.unit.metrics.builders import at, order, refund, requested
from tests.unit.metrics.dispute_builders import claim, denied

WEEK = Period(at(0), at(7))


def issued(return_id: str, seller_id: str, currency: str, amount: int, insured: int | None, when=None, **kwargs):
    ret = requested(return_id, buyer_id="b1", seller_id=seller_id, created_at=at(1), currency=currency)
    return refund_fact(refund(ret, issued_at=when or at(3), amount=amount, insured=insured, **kwargs))


def insured_refunds():
    return [
        issued("r1", "s1", "CNY", 19800, 1200),
        issued("r2", "s1", "CNY", 5000, 1500),
        issued("r3", "s1", "CNY", 7000, None),  # not insured
        issued("r4", "s1", "USD", 2999, None),
        issued("r5", "s2", "CNY", 4000, 900),  # another seller's
        issued("r6", "s1", "CNY", 4000, 800, when=at(8)),  # issued after the period
        issued("r7", "s1", "CNY", 4000, 700, status=RefundStatus.FAILED),  # never issued
    ]


def test_the_seller_report_sums_the_insured_postage_per_currency_apart_from_the_refunds():
    report = seller_metrics("s1", [], insured_refunds(), [], WEEK, target=0.1, reasons=5)
    assert report.insured_return_shipping == [Money(amount=2700, currency="CNY")]
    # The refunded amounts are the refunds' own, which never include the insurer's postage.
    assert report.refunded == [Money(amount=31800, currency="CNY"), Money(amount=2999, currency="USD")]


def test_the_overview_sums_every_sellers_insured_postage():
    report = overview([], insured_refunds(), WEEK, target=0.1, reasons=5, flagged_buyers=0)
    assert report.insured_return_shipping == [Money(amount=3600, currency="CNY")]
    assert report.model_dump(mode="json")["insured_return_shipping"] == [{"amount": 3600, "currency": "CNY"}]


def test_without_insured_refunds_the_list_is_empty_and_an_old_fact_reads_zero():
    report = seller_metrics("s1", [], [issued("r1", "s1", "USD", 2999, None)], [], WEEK, target=0.1, reasons=5)
    assert report.insured_return_shipping == []
    doc = to_document(issued("r2", "s1", "CNY", 5000, 1500))
    assert refund_from_document(doc).insured_return_shipping == 1500
    del doc["insured_return_shipping"]  # stored before the field existed
    assert refund_from_document(doc).insured_return_shipping == 0


# ---- which claims count, per marketplace ---------------------------------------------------------------------

NOW = at(70)
WINDOW = window_ending(NOW, 60)
RULE = ClaimsCountedRule({"US": "all", "DE": "exclude_denied_or_withdrawn", "CN": "all"})


def denied_claim_on(order_id: str, marketplace: str):
    filed = claim(f"c-{order_id}", order_id=order_id, seller_id="s1", filed_at=at(41), marketplace=marketplace)
    return claim_fact(denied(filed, at(44)))


def defects(marketplaces_of_orders: dict[str, str], rule: ClaimsCountedRule = RULE):
    # Facts keep the code as the event gave it, even one the deployment no longer serves (XX).
    deliveries = [
        replace(
            delivery_fact(order(o, buyer_id="b1", seller_id="s1", delivered_at=at(30), skus={"S": 1})), marketplace=m
        )
        for o, m in marketplaces_of_orders.items()
    ]
    claims = [denied_claim_on(o, m) for o, m in marketplaces_of_orders.items()]
    return order_defects(
        "s1",
        WINDOW,
        deliveries=deliveries,
        claims=claims,
        chargebacks=[],
        feedback=[],
        refunds=[],
        expired=[],
        target=0.01,
        claims_counted=rule,
        window_days=60,
    )


def test_each_claim_counts_by_its_marketplaces_rule():
    report = defects({"o-us": "US", "o-de": "DE"})
    # The denied claim on the US order counts; the one on the DE order does not (DE leaves those out).
    assert (report.a_to_z_claims.count, report.order_defect_rate.count, report.rating.claims) == (1, 1, 1)
    assert report.rating.perfect_orders == 1
    assert (report.claims_counted, report.claims_counted_by_marketplace) == (
        BY_MARKETPLACE,
        {"DE": "exclude_denied_or_withdrawn", "US": "all"},
    )


def test_one_marketplace_names_its_rule_and_no_orders_name_the_home_marketplaces():
    assert defects({"o-de": "DE"}).claims_counted == "exclude_denied_or_withdrawn"
    assert defects({"o-de": "DE"}).a_to_z_claims.count == 0
    assert (defects({}).claims_counted, defects({}).claims_counted_by_marketplace) == ("all", {})
    # A marketplace no longer served counts every claim (the default rule).
    assert defects({"o-xx": "XX"}).a_to_z_claims.count == 1


@pytest.fixture
def de_excludes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed marketplaces where DE leaves out denied and withdrawn claims (shipped otherwise)."""
    path = tmp_path / "marketplaces.yaml"
    path.write_text(
        "extends: shipped\nmarketplaces:\n  DE:\n    claims:\n      odr_claims_counted: exclude_denied_or_withdrawn\n"
    )
    monkeypatch.setattr(marketplaces, "_current", marketplaces.load(path))


def test_the_settings_read_each_marketplaces_rule(de_excludes):
    assert Settings().odr_claims_counted is None  # no override by default
    rule = Settings().claims_counted()
    assert (rule.of("DE"), rule.of("US"), rule.of("CN"), rule.of("XX")) == (
        "exclude_denied_or_withdrawn",
        "all",
        "all",
        "all",
    )
    report = defects({"o-us": "US", "o-de": "DE"}, rule)
    assert (report.a_to_z_claims.count, report.claims_counted) == (1, BY_MARKETPLACE)


def test_odr_claims_counted_overrides_every_marketplace(de_excludes):
    rule = Settings(odr_claims_counted="exclude_denied_or_withdrawn").claims_counted()
    assert {rule.of(code) for code in ("DE", "US", "CN", "XX")} == {"exclude_denied_or_withdrawn"}
    report = defects({"o-us": "US", "o-de": "DE"}, rule)
    assert (report.a_to_z_claims.count, report.claims_counted) == (0, "exclude_denied_or_withdrawn")
    rule = Settings(odr_claims_counted="all").claims_counted()
    assert defects({"o-us": "US", "o-de": "DE"}, rule).a_to_z_claims.count == 2
