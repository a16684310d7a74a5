"""Replacements through HTTP and the broker: ordered in the same write as the transition that
triggers it, confirmed by the order system, ending `replaced`; the fallback to a refund."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.events import new_event
from shared.models import Order, Return
from tests.integration.checks import problem
from tests.integration.returns.conftest import T0
from tests.integration.returns.factories import eventually, order_data, request_data, unique

pytestmark = pytest.mark.integration

BLUE = {"sku": "SKU-MUG-BLUE", "title": "Blue mug", "unit_price": {"amount": 1500, "currency": "USD"}}
RED = {"sku": "SKU-MUG-RED", "title": "Red mug", "unit_price": {"amount": 2499, "currency": "USD"}}


def mugs(**who: str) -> dict[str, Any]:
    """An order of three mugs whose listing has a blue variant at the same price and a dearer red one."""
    line = {"line_id": "L1", "sku": "SKU-MUG", "quantity": 3, "unit_price": {"amount": 1500, "currency": "USD"}}
    return order_data(lines=[line | {"variants": [BLUE, RED]}], **who)


async def replacing_return(api, ships: str, *line: Any) -> tuple[dict[str, Any], dict[str, str]]:
    who = {"buyer_id": unique("b"), "seller_id": unique("s")}
    await api.put_policy(who["seller_id"], offers_replacements=True, replacement_ships=ships)
    order = await api.put_order(mugs(**who))
    body = request_data(order["order_id"], line[:3] or ("L1", 1, "DEFECTIVE")) | {"resolution": "replacement"}
    if len(line) > 3:
        body["lines"][0]["replacement_sku"] = line[3]
    response = await api.client.post("/v1/returns", json=body, headers=api.as_buyer(who["buyer_id"]))
    assert response.status_code == 201, response.text
    return response.json(), who


async def answer(api, rid: str, headers: dict[str, str], **body: Any):
    return await api.client.put(f"/v1/returns/{rid}/replacement", json=body, headers=headers)


async def test_the_order_read_model_keeps_the_listings_variants(api, upstream, returns_settings):
    over_http = await api.put_order(mugs(buyer_id=unique("b"), seller_id=unique("s")))
    assert [v["sku"] for v in over_http["lines"][0]["variants"]] == ["SKU-MUG-BLUE", "SKU-MUG-RED"]
    stored = await api.client.get(f"/v1/orders/{over_http['order_id']}", headers=api.as_agent())
    assert stored.json()["lines"][0]["variants"] == over_http["lines"][0]["variants"]

    order = Order.model_validate(mugs(buyer_id=unique("b"), seller_id=unique("s")))
    event = new_event("order.delivered", service="orders", subject=order.order_id, data=order, sequence=1, time=T0)
    await upstream.publish(event, exchange=returns_settings.orders_exchange)

    async def delivered():
        response = await api.client.get(f"/v1/orders/{order.order_id}", headers=api.as_agent())
        return response.status_code == 200 and response.json()

    got = await eventually(delivered, what="order from order.delivered")
    assert [v["unit_price"]["amount"] for v in got["lines"][0]["variants"]] == [1500, 2499]


async def test_a_defective_item_replaced_ahead_of_its_return(api, tap):
    ret, who = await replacing_return(api, "at_authorization", "L1", 1, "DEFECTIVE", "SKU-MUG-BLUE")
    rid, seller, buyer = ret["return_id"], who["seller_id"], who["buyer_id"]
    assert ret["resolution"] == "replacement" and ret["lines"][0]["replacement_sku"] == "SKU-MUG-BLUE"
    assert ret["replacement"]["status"] == "requested" and ret["replacement"]["ships"] == "at_authorization"

    authorized = await api.authorize(rid, seller=seller)
    assert authorized["status"] == "authorized" and authorized["version"] == 3
    assert authorized["replacement"]["status"] == "ordered" and authorized["replacement"]["ordered_at"]
    events = await tap.wait_types(rid, ["return.created", "return.authorized", "return.replacement_ordered"])
    assert [e.sequence for e in events] == [1, 2, 3]
    assert Return.model_validate(events[1].data).replacement.status == "requested"
    assert Return.model_validate(events[2].data).replacement.lines[0].sku == "SKU-MUG-BLUE"

    orders = api.as_service("orders")
    sent = await answer(api, rid, orders, status="shipped", carrier="DHL", tracking_number="JD0001")
    assert sent.status_code == 200, sent.text
    assert sent.json()["replacement"]["status"] == "shipped" and sent.json()["status"] == "authorized"
    again = await answer(api, rid, orders, status="shipped", carrier="DHL", tracking_number="JD0001")
    assert again.status_code == 200 and again.json()["version"] == sent.json()["version"]
    problem(await answer(api, rid, orders, status="shipped", carrier="DHL", tracking_number="JD0002"), 409)
    problem(await answer(api, rid, orders, status="unavailable"), 409)

    await api.ship(rid, buyer=buyer)
    received = await api.receive(rid, [("L1", 1, "opened")], seller=seller)
    assert received["status"] == "replaced" and received["replaced_at"] and received["refund_due_at"] is None
    assert received["receipt"]["lines"][0]["disposition"] == "return_to_vendor"  # defective: whatever it looks like
    expected = [
        "return.created",
        "return.authorized",
        "return.replacement_ordered",
        "return.replacement_shipped",
        "return.shipped",
        "return.received",
        "return.replaced",
    ]
    events = await tap.wait_types(rid, expected)
    assert [e.sequence for e in events] == list(range(1, 8))
    got = Return.model_validate(events[-2].data)
    assert got.status == "received" and got.refund_due_at is None and got.receipt.lines[0].disposition
    assert events[-1].data == received
    assert (await api.feedback(rid, True, buyer=buyer))["status"] == "replaced"
    assert (
        await answer(api, rid, orders, status="shipped", carrier="DHL", tracking_number="JD0001")
    ).status_code == 200
    await tap.wait_types(rid, [*expected, "return.feedback_received"])


async def test_an_unavailable_replacement_after_receipt_is_refunded_instead(api, tap):
    ret, who = await replacing_return(api, "at_receipt", "L1", 2, "NO_LONGER_NEEDED")
    rid, seller = ret["return_id"], who["seller_id"]
    assert ret["replacement"]["ships"] == "at_receipt"
    authorized = await api.authorize(rid, seller=seller)
    assert authorized["replacement"]["status"] == "requested"
    body = {"lines": [{"line_id": "L1", "quantity": 2, "condition": "sellable", "disposition": "refurbish"}]}
    received = await api.transition(rid, "receive", api.as_seller(seller), body)
    assert received["status"] == "received" and received["refund_due_at"] is None
    assert (
        received["replacement"]["status"] == "ordered" and received["receipt"]["lines"][0]["disposition"] == "refurbish"
    )
    await tap.wait_types(rid, ["return.created", "return.authorized", "return.received", "return.replacement_ordered"])

    gone = await answer(api, rid, api.as_seller(seller), status="unavailable", note="discontinued")
    assert gone.status_code == 200, gone.text
    fallback = gone.json()
    assert fallback["replacement"]["status"] == "unavailable" and fallback["status"] == "received"
    assert fallback["refund_due_at"] > fallback["received_at"]
    events = await tap.wait_types(
        rid,
        [
            "return.created",
            "return.authorized",
            "return.received",
            "return.replacement_ordered",
            "return.replacement_unavailable",
        ],
    )
    assert events[-1].data == fallback and events[-1].sequence == fallback["version"] == 5
    repeat = await answer(api, rid, api.as_agent(), status="unavailable")
    assert repeat.status_code == 200 and repeat.json()["version"] == 5


async def test_replacement_requests_and_answers_against_the_rules(api, tap):
    ret, who = await replacing_return(api, "at_receipt")
    rid = ret["return_id"]
    problem(await answer(api, rid, api.as_buyer(who["buyer_id"]), status="unavailable"), 403)
    problem(await answer(api, rid, api.as_seller("s-someone-else"), status="unavailable"), 404)
    problem(await answer(api, rid, api.as_service(), status="shipped", carrier="UPS"), 422, "tracking_number")
    problem(await answer(api, rid, api.as_service(), status="lost"), 422, "status")
    problem(await answer(api, rid, api.as_service(), status="shipped", carrier="UPS", tracking_number="1"), 409)

    order = await api.put_order(mugs(buyer_id=who["buyer_id"], seller_id=who["seller_id"]))
    post = lambda body: api.client.post("/v1/returns", json=body, headers=api.as_buyer(who["buyer_id"]))  # noqa: E731
    wanted = request_data(order["order_id"], ("L1", 1, "DEFECTIVE")) | {"resolution": "replacement"}
    wanted["lines"][0]["replacement_sku"] = "SKU-MUG-RED"
    refused = problem(await post(wanted), 422, "lines[0].replacement_sku")
    assert "a replacement must cost the same" in refused["errors"][0]["reason"]
    wanted["lines"][0]["replacement_sku"] = "SKU-LAMP"
    problem(await post(wanted), 422, "lines[0].replacement_sku")
    plain = await api.put_policy(unique("s"))
    assert plain["offers_replacements"] is False and plain["replacement_ships"] == "at_receipt"
    other = await api.put_order(mugs(buyer_id=who["buyer_id"], seller_id=plain["seller_id"]))
    problem(await post(request_data(other["order_id"]) | {"resolution": "replacement"}), 422, "resolution")
    refund = await post(request_data(other["order_id"]))
    assert refund.status_code == 201 and refund.json()["replacement"] is None
    problem(await answer(api, refund.json()["return_id"], api.as_agent(), status="unavailable"), 409)
    await tap.wait_types(rid, ["return.created"])  # nothing refused was written (waited for: the relay is async)


async def test_the_same_confirmation_sent_twice_at_once_is_recorded_once(api, tap):
    ret, who = await replacing_return(api, "at_authorization")
    rid = ret["return_id"]
    await api.authorize(rid, seller=who["seller_id"])
    body = {"status": "shipped", "carrier": "DHL", "tracking_number": "JD0009"}
    copies = [answer(api, rid, api.as_service("orders"), **body) for _ in range(4)]
    answers = await asyncio.gather(*copies)
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert len({a.json()["version"] for a in answers}) == 1
    expected = ["return.created", "return.authorized", "return.replacement_ordered", "return.replacement_shipped"]
    await tap.wait_types(rid, expected)
    # A later event of this return proves no second `return.replacement_shipped` was still on its way.
    await api.ship(rid, buyer=who["buyer_id"])
    await tap.wait_types(rid, [*expected, "return.shipped"])
