"""Several marketplaces in one deployment (docs/product.md §13), through the public interfaces only.

Each order names its marketplace and gets that marketplace's rules: the published rule sets, an
unknown marketplace refused at the door, the same buyer-remorse return in the US (30 days, the
seller's restocking fee kept) and in Germany (a 14-day withdrawal: no fee, and no seller window
under 14 days), China's 7-day no-reason and 15-day quality windows, and China's return-shipping
insurance shown apart in the refund. Amounts are worked out by hand.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tests.e2e.harness import SERVICES, Stack, eventually
from tests.e2e.world import Party, World, ok

MARKETS = {  # code: (currency, time zone, country of a local seller's return address)
    "US": ("USD", "America/New_York", "US"),
    "DE": ("EUR", "Europe/Berlin", "DE"),
    "CN": ("CNY", "Asia/Shanghai", "CN"),
}


def money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def market_order(
    world: World,
    buyer: Party,
    seller: Party,
    code: str,
    lines: list[tuple[str, str, str, int, int]],
    *,
    days_ago: int,
    insured: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A delivered order of marketplace `code`, priced in its currency, from a seller in its country,
    delivered at noon local time `days_ago` local days ago (so day counts don't depend on the hour).
    Lines named in `insured` were bought with return-shipping insurance."""
    currency, zone, country = MARKETS[code]
    local = ZoneInfo(zone)
    day = world.stack.now().astimezone(local).date() - timedelta(days=days_ago)
    order = world.order(buyer, seller, lines, shipping=0, delivered_at=datetime.combine(day, time(12), tzinfo=local))
    order["marketplace"], order["currency"] = code, currency
    order["shipping_paid"] = money(0, currency)
    order["seller"]["return_address"]["country"] = country
    for line in order["lines"]:
        line["unit_price"]["currency"] = currency
        if line["line_id"] in insured:
            line["return_shipping_insurance"] = True
    return order


async def put_policy(seller: Party, code: str, policy: dict[str, Any]) -> Any:
    return await seller.call(
        "returns", "PUT", f"/v1/sellers/{seller.id}/return-policy", json=policy, params={"marketplace": code}
    )


def comparable(profile: dict[str, Any]) -> dict[str, Any]:
    """A published profile with its category sets sorted: a set's order is no difference in the rules
    (and, as frozensets, differs from process to process)."""
    rules = {k: sorted(v) if k.endswith("_categories") else v for k, v in profile["returns"].items()}
    return profile | {"returns": rules}


def fields_of(response: Any) -> list[str]:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return [error["field"] for error in response.json().get("errors", [])]


async def refunded(party: Party, return_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        ret = await party.get_return(return_id)
        return ret if ret["status"] == "refunded" else None

    return await eventually(done, what=f"{return_id} refunded")


async def remorse_return(
    buyer: Party, seller: Party, order: dict[str, Any], postage: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """NO_LONGER_NEEDED on L1, an unpaid label (the buyer pays `postage`), shipped, received `opened`,
    refunded on receipt: the return as requested, and its refund."""
    currency = order["currency"]
    requested = ok(
        await buyer.request_return(
            order["order_id"], [{"line_id": "L1", "quantity": 1, "reason_code": "NO_LONGER_NEEDED"}]
        ),
        201,
    )
    rid = requested["return_id"]
    auth = ok(
        await seller.act(rid, "authorize", {"label_type": "unpaid", "return_postage": money(postage, currency)}), 200
    )["authorization"]
    assert auth["return_shipping_paid_by"] == "buyer", "the buyer's fault, a local seller: the buyer pays postage"
    ok(await buyer.act(rid, "ship", {"carrier": "DHL", "tracking_number": f"TRK{rid[-8:]}"}), 200)
    ok(await seller.act(rid, "receive", {"lines": [{"line_id": "L1", "quantity": 1, "condition": "opened"}]}), 200)
    await refunded(buyer, rid)
    [refund] = await seller.refunds_of_return(rid)
    return requested, refund


async def test_every_service_publishes_the_same_rule_sets_and_no_others(stack: Stack, world: World):
    buyer = world.buyer()
    profiles = []
    for service in SERVICES:
        de = ok(await buyer.call(service, "GET", "/v1/marketplaces/DE"), 200)
        profiles.append(comparable(de))
        listed = ok(await buyer.call(service, "GET", "/v1/marketplaces"), 200)
        assert [m["code"] for m in listed] == ["CN", "DE", "GB", "JP", "US"], service
    de = profiles[0]
    differing = [service for service, profile in zip(SERVICES, profiles, strict=True) if profile != de]
    assert not differing, f"every service must read the same marketplaces file: {differing} differ from returns"
    assert (de["code"], de["currency"], de["calendar_country"], de["time_zone"], de["default_locale"]) == (
        "DE",
        "EUR",
        "DE",
        "Europe/Berlin",
        "de",
    )
    rules = de["returns"]
    assert (rules["window_days"], rules["minimum_window_days"], rules["withdrawal_days"]) == (14, 14, 14)
    assert "sealed_hygiene" in rules["non_returnable_categories"]
    assert rules["return_shipping_insurance"] is False

    unknown = await buyer.call("returns", "GET", "/v1/marketplaces/XX")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert unknown.json()["type"].endswith("marketplace-not-found")
    anonymous = await stack.http("returns").get("/v1/marketplaces/DE")
    assert anonymous.status_code == 401, "the published rules are for authenticated callers"


async def test_an_order_for_an_unknown_marketplace_is_refused_at_the_door(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    order = world.order(buyer, seller, [("L1", "Desk lamp", "home", 1, 3900)], shipping=0)
    path = f"/v1/orders/{order['order_id']}"
    refused = await world.agent.call("returns", "PUT", path, json=order | {"marketplace": "XX"})
    assert refused.status_code == 422, refused.text
    assert "marketplace" in fields_of(refused)
    assert (await world.agent.call("returns", "GET", path)).status_code == 404, "nothing was stored"
    # The same snapshot naming a marketplace the deployment serves is taken.
    ok(await world.agent.call("returns", "PUT", path, json=order), 201)


async def test_buyer_remorse_in_the_us_keeps_the_sellers_restocking_fee(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    ok(await put_policy(seller, "US", {"restocking_fee_percent": "20", "refund_mode": "auto"}), 200)
    # Day 20: past Germany's 14 days, inside the US 30-day window.
    order = await world.deliver(
        market_order(world, buyer, seller, "US", [("L1", "Stand mixer", "kitchen", 1, 5000)], days_ago=20)
    )
    requested, refund = await remorse_return(buyer, seller, order, postage=750)
    assert (requested["fault"], requested["in_policy"], requested["withdrawal"]) == ("buyer", True, False)
    # 5000 − 20 % restocking fee (the buyer's fault, the item opened) = 4000.
    b = refund["breakdown"]
    assert (b["items"], b["restocking_fee"], b["total"]) == (money(5000, "USD"), money(1000, "USD"), money(4000, "USD"))
    assert refund["amount"] == money(4000, "USD")
    ret = await buyer.get_return(requested["return_id"])
    assert Decimal(ret["receipt"]["lines"][0]["restocking_fee_percent"]) == 20


async def test_buyer_remorse_in_germany_is_a_withdrawal_without_a_fee(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    # A seller may be more generous than the marketplace, never less: 10 days is under Germany's 14.
    shorter = await put_policy(seller, "DE", {"return_window_days": 10, "restocking_fee_percent": "20"})
    assert shorter.status_code == 422, shorter.text
    assert fields_of(shorter) == ["return_window_days"]
    assert "14" in shorter.json()["errors"][0]["reason"]
    policy = ok(await put_policy(seller, "DE", {"restocking_fee_percent": "20", "refund_mode": "auto"}), 200)
    assert policy["marketplace"] == "DE" and Decimal(policy["restocking_fee_percent"]) == 20
    # One policy per marketplace: the seller's US policy is still the marketplace default.
    us = ok(await seller.call("returns", "GET", f"/v1/sellers/{seller.id}/return-policy", params={"marketplace": "US"}))
    assert us["marketplace"] == "US" and us["is_default"] is True

    order = await world.deliver(
        market_order(world, buyer, seller, "DE", [("L1", "Stand mixer", "kitchen", 1, 5000)], days_ago=5)
    )
    requested, refund = await remorse_return(buyer, seller, order, postage=699)
    assert (requested["fault"], requested["in_policy"], requested["withdrawal"]) == ("buyer", True, True)
    # A withdrawal bears no restocking fee whatever the seller's policy says: the whole 5000 back.
    b = refund["breakdown"]
    assert (b["items"], b["restocking_fee"], b["total"]) == (money(5000, "EUR"), money(0, "EUR"), money(5000, "EUR"))
    assert refund["amount"] == money(5000, "EUR")
    ret = await buyer.get_return(requested["return_id"])
    assert Decimal(ret["receipt"]["lines"][0]["restocking_fee_percent"]) == 0


async def test_china_no_reason_returns_last_7_days_quality_problems_15(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    line = [("L1", "Rice cooker", "kitchen", 1, 39900)]
    day7 = await world.deliver(market_order(world, buyer, seller, "CN", line, days_ago=7))
    day8 = await world.deliver(market_order(world, buyer, seller, "CN", line, days_ago=8))
    day12 = await world.deliver(market_order(world, buyer, seller, "CN", line, days_ago=12))

    refused = await buyer.request_return(
        day8["order_id"], [{"line_id": "L1", "quantity": 1, "reason_code": "NO_LONGER_NEEDED"}]
    )
    assert refused.status_code == 422, refused.text
    [field] = fields_of(refused)
    assert field.startswith("lines[0]"), field
    assert "7-day" in refused.json()["errors"][0]["reason"]

    last_day = ok(
        await buyer.request_return(
            day7["order_id"], [{"line_id": "L1", "quantity": 1, "reason_code": "NO_LONGER_NEEDED"}]
        ),
        201,
    )
    assert (last_day["fault"], last_day["withdrawal"]) == ("buyer", False), "China has no statutory withdrawal"
    defective = ok(
        await buyer.request_return(day12["order_id"], [{"line_id": "L1", "quantity": 1, "reason_code": "DEFECTIVE"}]),
        201,
    )
    assert (defective["fault"], defective["in_policy"]) == ("seller", True)


async def test_china_insured_return_postage_is_refunded_apart_by_the_insurer(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()  # the marketplace's default policy
    order = await world.deliver(
        market_order(
            world, buyer, seller, "CN", [("L1", "Wool coat", "apparel", 1, 12900)], days_ago=3, insured=("L1",)
        )
    )
    requested, refund = await remorse_return(buyer, seller, order, postage=1500)
    assert requested["lines"][0]["return_shipping_insurance"] is True
    ret = await buyer.get_return(requested["return_id"])
    auth = ret["authorization"]
    assert (auth["return_shipping_paid_by"], auth["insured_return_postage"]) == ("buyer", money(1500, "CNY"))
    # The insurer refunds the buyer's 15.00 postage: shown apart, not in the total, the amount or the
    # seller's charge. China caps the restocking fee at 0, so the items come back whole.
    b = refund["breakdown"]
    assert b["insured_return_shipping"] == money(1500, "CNY")
    assert (b["items"], b["restocking_fee"], b["return_shipping_concession"], b["total"]) == (
        money(12900, "CNY"),
        money(0, "CNY"),
        money(0, "CNY"),
        money(12900, "CNY"),
    )
    assert refund["amount"] == money(12900, "CNY")
    assert ret["refund"]["amount"] == money(12900, "CNY")
