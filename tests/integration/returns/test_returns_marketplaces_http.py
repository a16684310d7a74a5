"""Marketplaces at the returns service's doors: an order for one it does not serve is refused (HTTP)
or parked (event) and nothing is stored; seller policies are kept and checked per marketplace, and a
return applies the policy and rules of its order's marketplace."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.returns.rulebook import RuleBook
from shared import marketplaces
from tests.integration.returns.conftest import T0
from tests.integration.returns.factories import order_data, request_data, unique

pytestmark = pytest.mark.integration


def order_in(marketplace: str, currency: str, days_ago: int, **kwargs):
    """An order of that marketplace delivered `days_ago` days before the tests' clock (T0)."""
    return order_data(
        buyer_id=unique("b"),
        marketplace=marketplace,
        currency=currency,
        delivered_at=T0 - timedelta(days=days_ago),
        **kwargs,
    )


async def test_put_order_for_an_unknown_marketplace_is_refused_naming_it_and_stores_nothing(api, returns_db):
    data = order_in("XX", "USD", 2)
    response = await api.client.put(f"/v1/orders/{data['order_id']}", json=data, headers=api.as_service())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = {error["field"]: error["reason"] for error in response.json()["errors"]}
    assert list(errors) == ["marketplace"] and "unknown marketplace" in errors["marketplace"], errors
    assert await returns_db.orders.find_one({"_id": data["order_id"]}) is None


async def test_an_order_delivered_for_an_unknown_marketplace_is_parked_and_stores_nothing(returns_db, deliver_parked):
    data = order_in("XX", "USD", 2)
    letter = await deliver_parked(data)
    assert "marketplace" in letter.error
    assert await returns_db.orders.find_one({"_id": data["order_id"]}) is None


async def test_a_seller_policy_per_marketplace_checked_against_it(api):
    seller = unique("s")
    url = f"/v1/sellers/{seller}/return-policy"
    short = await api.client.put(
        url, params={"marketplace": "DE"}, json={"return_window_days": 10}, headers=api.as_seller(seller)
    )
    assert short.status_code == 422 and short.headers["content-type"] == "application/problem+json"
    assert [(e["field"], e["reason"]) for e in short.json()["errors"]] == [
        ("return_window_days", "must be at least the marketplace's 14 days (DE)")
    ]
    de = await api.client.put(
        url, params={"marketplace": "DE"}, json={"return_window_days": 21}, headers=api.as_seller(seller)
    )
    assert de.status_code == 200, de.text
    assert de.json()["marketplace"] == "DE" and de.json()["return_window_days"] == 21 and not de.json()["is_default"]
    # Each marketplace has its own: the US one (the default marketplace) is still the default policy.
    us = await api.client.get(url, headers=api.as_seller(seller))
    assert us.json().items() >= {"marketplace": "US", "is_default": True, "return_window_days": 30}.items()
    cn = await api.client.get(url, params={"marketplace": "CN"}, headers=api.as_seller(seller))
    assert cn.json().items() >= {"marketplace": "CN", "is_default": True, "return_window_days": 7}.items()
    kept = await api.client.get(url, params={"marketplace": "DE"}, headers=api.as_seller(seller))
    assert kept.json().items() >= {"marketplace": "DE", "return_window_days": 21, "version": 1}.items()
    for call in (
        api.client.get(url, params={"marketplace": "XX"}, headers=api.as_seller(seller)),
        api.client.put(url, params={"marketplace": "XX"}, json={}, headers=api.as_seller(seller)),
    ):
        unknown = await call
        assert unknown.status_code == 422 and [e["field"] for e in unknown.json()["errors"]] == ["marketplace"]


async def create(api, order, *line):
    return await api.client.post(
        "/v1/returns", json=request_data(order["order_id"], line), headers=api.as_buyer(order["buyer"]["id"])
    )


async def test_a_return_applies_the_policy_and_rules_of_its_orders_marketplace(api):
    generous = unique("s")
    await api.client.put(
        f"/v1/sellers/{generous}/return-policy",
        params={"marketplace": "DE"},
        json={"return_window_days": 21},
        headers=api.as_seller(generous),
    )
    # Day 18 in DE: past the marketplace's 14 days, within the seller's DE policy; another seller refuses.
    late = await api.put_order(order_in("DE", "EUR", 18, seller_id=generous))
    accepted = await create(api, late, "L1", 1, "NO_LONGER_NEEDED")
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["marketplace"] == "DE" and not accepted.json()["withdrawal"]
    other = await api.put_order(order_in("DE", "EUR", 18, seller_id=unique("s")))
    refused = await create(api, other, "L1", 1, "NO_LONGER_NEEDED")
    assert refused.status_code == 422 and "14-day" in refused.json()["errors"][0]["reason"]
    # Within the statutory 14 days a buyer-fault return is a withdrawal.
    early = await api.put_order(order_in("DE", "EUR", 5, seller_id=generous))
    withdrawn = await create(api, early, "L1", 1, "NO_LONGER_NEEDED")
    assert withdrawn.status_code == 201 and withdrawn.json()["withdrawal"]


async def insured_cn_order(api, *, days_ago: int, quantity: int):
    """A CN order of a new seller, its one line (L1) with return-shipping insurance."""
    line = {"line_id": "L1", "quantity": quantity, "return_shipping_insurance": True}
    return await api.put_order(order_in("CN", "CNY", days_ago, seller_id=unique("s"), lines=[line]))


async def test_cn_no_reason_on_day_8_refused_a_quality_problem_passes_insured_postage(api):
    order = await insured_cn_order(api, days_ago=8, quantity=2)
    refused = await create(api, order, "L1", 1, "NO_LONGER_NEEDED")
    assert refused.status_code == 422 and [e["field"] for e in refused.json()["errors"]] == ["lines[0].line_id"]
    defective = await create(api, order, "L1", 1, "DEFECTIVE")
    assert defective.status_code == 201, defective.text
    assert defective.json()["lines"][0]["return_shipping_insurance"]
    # The seller pays a defective item's return shipping: nothing for the insurer.
    authorized = await api.authorize(defective.json()["return_id"], seller=order["seller"]["id"])
    assert authorized["authorization"]["insured_return_postage"] is None
    fresh = await insured_cn_order(api, days_ago=2, quantity=1)
    changed_mind = await create(api, fresh, "L1", 1, "NO_LONGER_NEEDED")
    assert changed_mind.status_code == 201, changed_mind.text
    insured = await api.authorize(changed_mind.json()["return_id"], seller=fresh["seller"]["id"])
    assert insured["authorization"]["insured_return_postage"] == {"amount": 1200, "currency": "CNY"}


async def test_a_stored_order_of_a_marketplace_no_longer_served_reads_and_its_return_is_a_422(api, returns_app):
    order = await api.put_order(order_in("DE", "EUR", 2))
    lifecycle, before = returns_app.state.lifecycle, marketplaces.current()
    book = lifecycle.book
    without_de = marketplaces.Marketplaces({code: p for code, p in before.items() if code != "DE"})
    try:  # DE removed from the file (a restart with a new registry), its order still stored
        marketplaces.install(without_de)
        lifecycle.book = RuleBook(without_de, book.default_marketplace)
        read = await api.client.get(f"/v1/orders/{order['order_id']}", headers=api.as_service())
        assert read.status_code == 200, read.text
        assert read.json()["marketplace"] == "DE" and read.json()["buyer"]["locale"] == order["buyer"]["locale"]
        refused = await create(api, order, "L1", 1, "NO_LONGER_NEEDED")
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        errors = refused.json()["errors"]
        assert [e["field"] for e in errors] == ["marketplace"] and "unknown marketplace" in errors[0]["reason"]
    finally:
        marketplaces.install(before)
        lifecycle.book = book
