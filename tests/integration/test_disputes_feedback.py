"""Seller feedback through HTTP and the broker: the buyer leaves one per order (`feedback.left`), an
agent removes it (`feedback.removed`), who sees what, and what is refused changes nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.integration.checks import problem
from tests.unit.returns.builders import unique

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.claims_harness"]  # its fixtures: the service, its API, a tap, the clock


async def test_buyer_leaves_one_feedback_per_order_and_an_agent_removes_it(claims_api, disputes_tap, disputes_db):
    api = claims_api
    order = await api.deliver()
    buyer = api.as_buyer(order.buyer.id, **{"Idempotency-Key": unique("k")})
    body = {"order_id": order.order_id, "rating": 2, "comment": "Slow and rude"}
    left = api.ok(await api.client.post("/v1/feedback", json=body, headers=buyer), 201)
    assert left["negative"] and left["rating"] == 2 and left["version"] == 1 and not left["removed"]
    assert (left["buyer_id"], left["seller_id"], left["order_id"]) == (order.buyer.id, order.seller.id, order.order_id)
    assert api.ok(await api.client.post("/v1/feedback", json=body, headers=buyer), 201) == left  # a retry
    again = await api.client.post("/v1/feedback", json=body | {"rating": 5}, headers=api.as_buyer(order.buyer.id))
    problem(again, 409)
    [event] = await disputes_tap.wait_types(left["feedback_id"], ["feedback.left"])
    assert event.data == left

    fid = left["feedback_id"]
    problem(
        await api.client.post(f"/v1/feedback/{fid}/remove", json={"note": "x"}, headers=api.as_buyer(order.buyer.id)),
        403,
    )
    problem(await api.client.post(f"/v1/feedback/{fid}/remove", json={}, headers=api.as_agent()), 422, "note")
    removed = api.ok(
        await api.client.post(f"/v1/feedback/{fid}/remove", json={"note": "Abusive"}, headers=api.as_agent()), 200
    )
    assert removed["removed"] and removed["removal_note"] == "Abusive" and removed["version"] == 2
    problem(await api.client.post(f"/v1/feedback/{fid}/remove", json={"note": "again"}, headers=api.as_agent()), 409)
    events = await disputes_tap.wait_types(fid, ["feedback.left", "feedback.removed"])
    assert events[-1].data == removed and events[-1].sequence == 2
    assert await disputes_db.seller_feedback.count_documents({"order_id": order.order_id}) == 1


async def test_feedback_refused_changes_nothing(claims_api, disputes_tap, disputes_db):
    api = claims_api
    order = await api.deliver()
    buyer = api.as_buyer(order.buyer.id)
    body = {"order_id": order.order_id, "rating": 4}

    async def post(payload, headers=buyer):
        return await api.client.post("/v1/feedback", json=payload, headers=headers)

    problem(await post(body | {"rating": 6}), 422, "rating")
    problem(await post(body | {"rating": "4"}), 422, "rating")
    problem(await post(body | {"order_id": "o-unknown"}), 422, "order_id")
    problem(await post(body, api.as_buyer("someone-else")), 422, "order_id")
    problem(await post(body, api.as_seller(order.seller.id)), 403)
    problem(await post(body, api.as_agent()), 403)
    assert await disputes_db.seller_feedback.count_documents({"order_id": order.order_id}) == 0

    # Two at once: one is left, the other refused.
    responses = await asyncio.gather(post(body), post(body | {"rating": 1}))
    assert sorted(r.status_code for r in responses) == [201, 409]
    [left] = [r.json() for r in responses if r.status_code == 201]
    await disputes_tap.wait_types(left["feedback_id"], ["feedback.left"])
    assert [e.type for e in disputes_tap.events if e.data.get("order_id") == order.order_id] == ["feedback.left"]


async def test_who_sees_which_feedback(claims_api, disputes_clock):
    api = claims_api
    seller = unique("s")
    orders = [await api.deliver(seller_id=seller) for _ in range(2)]
    stranger = await api.deliver()
    left = []
    for order in [*orders, stranger]:
        body = {"order_id": order.order_id, "rating": 5}
        left.append(api.ok(await api.client.post("/v1/feedback", json=body, headers=api.as_buyer(order.buyer.id)), 201))
        disputes_clock.advance(timedelta(seconds=1))  # newest first: not the same instant
    first, second, other = left
    fid = first["feedback_id"]
    for headers in (api.as_buyer(orders[0].buyer.id), api.as_seller(seller), api.as_agent()):
        assert api.ok(await api.client.get(f"/v1/feedback/{fid}", headers=headers), 200) == first
    for headers in (
        api.as_buyer(stranger.buyer.id),
        api.as_seller(stranger.seller.id),
        api.as_buyer(orders[1].buyer.id),
    ):
        problem(await api.client.get(f"/v1/feedback/{fid}", headers=headers), 404)

    async def listed(headers, **query) -> list[str]:
        page = api.ok(await api.client.get("/v1/feedback", params=query, headers=headers), 200)
        return [f["feedback_id"] for f in page["items"]]

    assert await listed(api.as_seller(seller)) == [second["feedback_id"], fid]
    assert await listed(api.as_seller(seller), seller_id=stranger.seller.id) == []
    assert await listed(api.as_buyer(orders[0].buyer.id)) == [fid]
    assert await listed(api.as_agent(), seller_id=seller) == [second["feedback_id"], fid]
    assert await listed(api.as_agent(), order_id=stranger.order_id) == [other["feedback_id"]]
    page = api.ok(
        await api.client.get("/v1/feedback", params={"seller_id": seller, "limit": 1}, headers=api.as_agent()), 200
    )
    rest = await api.client.get(
        "/v1/feedback", params={"seller_id": seller, "cursor": page["next_cursor"]}, headers=api.as_agent()
    )
    assert [f["feedback_id"] for f in [*page["items"], *api.ok(rest, 200)["items"]]] == [second["feedback_id"], fid]
