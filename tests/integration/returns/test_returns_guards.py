"""What the returns API refuses, and what it does under races and retries: nothing stored, nothing emitted."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.checks import problem
from tests.integration.returns.factories import order_data, request_data, unique

pytestmark = pytest.mark.integration


@pytest.fixture
async def order(api):
    return await api.put_order(order_data(buyer_id=unique("b"), seller_id=unique("s")))


async def test_bad_requests_answer_problems_and_store_and_emit_nothing(api, order, tap, returns_db, clock):
    buyer = api.as_buyer(order["buyer"]["id"])
    oid = order["order_id"]

    async def post(**kwargs):
        return await api.client.post("/v1/returns", headers=buyer | kwargs.pop("headers", {}), **kwargs)

    problem(await post(json=request_data("no-such-order")), 422, "order_id")
    problem(await post(json=request_data(oid, ("L9", 1, "DEFECTIVE"))), 422, "lines[0].line_id")
    problem(await post(json=request_data(oid, ("L1", 4, "DEFECTIVE"))), 422, "lines[0].quantity")
    problem(await post(json=request_data(oid, ("L1", 1, "I_JUST_FEEL_LIKE_IT"))), 422, "lines[0].reason_code")
    problem(
        await post(
            json=request_data(oid) | {"lines": [{"line_id": "L1", "quantity": "two", "reason_code": "DEFECTIVE"}]}
        ),
        422,
        "lines[0].quantity",
    )
    problem(await post(json={"order_id": oid, "lines": "L1"}), 422, "lines")
    problem(await post(json=request_data(oid) | {"price": 1}), 422, "price")
    problem(await post(json=request_data(oid) | {"policy_exception": True}), 403)
    problem(
        await post(content=b'{"order_id": "x", "lines": [', headers={"content-type": "application/json"}), 400, "body"
    )
    problem(
        await post(content=b'{"order_id": "' + b"x" * 20_000 + b'"}', headers={"content-type": "application/json"}), 413
    )
    problem(await api.client.post("/v1/returns", json=request_data(oid)), 401)
    problem(
        await api.client.post("/v1/returns", json=request_data(oid), headers=api.as_seller(order["seller"]["id"])), 403
    )
    late = order_data(buyer_id=order["buyer"]["id"], delivered_at=clock.now().replace(year=2024))
    await api.put_order(late)
    problem(await post(json=request_data(late["order_id"], ("L1", 1, "DEFECTIVE"))), 422, "lines[0].line_id")

    assert await returns_db.returns.count_documents({"order_id": {"$in": [oid, late["order_id"]]}}) == 0
    # A good request afterwards: once its event is out, anything the bad ones emitted would be too.
    good = await api.create_return(oid, ("L1", 1, "DEFECTIVE"), buyer=order["buyer"]["id"])
    await tap.wait_types(good["return_id"], ["return.created"])
    assert [e.subject for e in tap.for_order(oid)] == [good["return_id"]]
    assert tap.for_order(late["order_id"]) == []


async def test_bad_transition_bodies_change_nothing(api, order):
    _, ret = order, await api.create_return(order["order_id"], ("L1", 2, "DEFECTIVE"), buyer=order["buyer"]["id"])
    seller = api.as_seller(order["seller"]["id"])
    path = f"/v1/returns/{ret['return_id']}"
    problem(
        await api.client.post(f"{path}/reject", json={"reason_code": "BECAUSE"}, headers=seller), 422, "reason_code"
    )
    problem(
        await api.client.post(f"{path}/authorize", json={"return_shipping_paid_by": "buyer"}, headers=seller),
        422,
        "return_shipping_paid_by",
    )
    problem(await api.client.post(f"{path}/receive", json={"lines": []}, headers=seller), 422, "lines")
    problem(
        await api.client.post(
            f"{path}/receive",
            json={"lines": [{"line_id": "L1", "quantity": 1, "condition": "sellable"}]},
            headers=seller,
        ),
        409,
    )
    after = await api.get_return(ret["return_id"])
    assert after["version"] == 1 and after["status"] == "requested" and len(after["timeline"]) == 1


async def test_racing_authorize_and_close_exactly_one_wins(api, order, tap):
    buyer, seller = order["buyer"]["id"], order["seller"]["id"]
    for _ in range(4):
        ret = await api.create_return(order["order_id"], ("L1", 1, "DEFECTIVE"), buyer=buyer)
        path = f"/v1/returns/{ret['return_id']}"
        got = await api.client.get(path, headers=api.as_buyer(buyer))
        etag = {"If-Match": got.headers["ETag"]}  # both decided on what they saw: version 1
        authorize, close = await asyncio.gather(
            api.client.post(f"{path}/authorize", json={}, headers=api.as_seller(seller) | etag),
            api.client.post(f"{path}/close", json={"code": "BUYER_WITHDREW"}, headers=api.as_buyer(buyer) | etag),
        )
        # The loser's If-Match named a version that is no longer current: 412, not 409 (RFC 9110).
        assert sorted([authorize.status_code, close.status_code]) == [200, 412], (authorize.text, close.text)
        lost = problem(close if close.status_code == 412 else authorize, 412)
        assert lost["type"].endswith("/precondition-failed")
        assert lost["current_etag"] == '"2"'  # found before the write, or by losing the write itself
        won = "authorized" if authorize.status_code == 200 else "closed"
        final = await api.get_return(ret["return_id"])
        assert final["version"] == 2 and final["status"] == won and len(final["timeline"]) == 2
        await tap.wait_types(ret["return_id"], ["return.created", f"return.{won}"])
        if won == "authorized":  # give the unit back for the next round
            await api.close(ret["return_id"], buyer=buyer)


async def test_racing_without_preconditions_never_loses_a_write(api, order):
    """Without If-Match both may succeed one after the other (close after authorize is legal), but
    never both on the same version: the timeline holds exactly the transitions that answered 200."""
    buyer, seller = order["buyer"]["id"], order["seller"]["id"]
    ret = await api.create_return(order["order_id"], ("L1", 1, "DEFECTIVE"), buyer=buyer)
    path = f"/v1/returns/{ret['return_id']}"
    answers = await asyncio.gather(
        api.client.post(f"{path}/authorize", json={}, headers=api.as_seller(seller)),
        api.client.post(f"{path}/close", json={"code": "BUYER_WITHDREW"}, headers=api.as_buyer(buyer)),
    )
    assert all(a.status_code in (200, 409) for a in answers)
    assert any(a.status_code == 200 for a in answers), "the first to land is legal and must succeed"
    final = await api.get_return(ret["return_id"])
    assert final["version"] == 1 + sum(a.status_code == 200 for a in answers) == len(final["timeline"])


async def test_concurrent_requests_never_return_more_than_delivered(api, order, returns_db):
    body = request_data(order["order_id"], ("L1", 2, "DEFECTIVE"))  # 3 delivered: only one of these fits
    buyer = api.as_buyer(order["buyer"]["id"])
    answers = await asyncio.gather(*(api.client.post("/v1/returns", json=body, headers=buyer) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [201, 422, 422]
    assert await returns_db.returns.count_documents({"order_id": order["order_id"]}) == 1


async def test_someone_elses_return_does_not_exist(api, order):
    ret = await api.create_return(order["order_id"], ("L1", 1, "DEFECTIVE"), buyer=order["buyer"]["id"])
    path = f"/v1/returns/{ret['return_id']}"
    problem(await api.client.get(path, headers=api.as_buyer("b-intruder")), 404)
    problem(await api.client.get(path, headers=api.as_seller("s-intruder")), 404)
    problem(await api.client.post(f"{path}/authorize", json={}, headers=api.as_seller("s-intruder")), 404)
    problem(
        await api.client.post(
            f"{path}/ship", json={"carrier": "UPS", "tracking_number": "1"}, headers=api.as_buyer("b-intruder")
        ),
        404,
    )
    listed = await api.client.get(
        "/v1/returns", params={"order_id": order["order_id"]}, headers=api.as_buyer("b-intruder")
    )
    assert listed.status_code == 200 and listed.json()["items"] == []
    # Their own, but not their move: the role decides.
    problem(await api.client.post(f"{path}/authorize", json={}, headers=api.as_buyer(order["buyer"]["id"])), 403)
    problem(await api.client.post(f"{path}/authorize", json={}, headers=api.as_service("crm")), 403)
    acting = api.as_service("crm", acting_for=f"seller:{order['seller']['id']}")
    done = await api.client.post(f"{path}/authorize", json={}, headers=acting)
    assert done.status_code == 200 and done.json()["timeline"][-1]["actor"] == {
        "role": "seller",
        "id": order["seller"]["id"],
    }
    assert (await api.client.get(path, headers=api.as_agent())).status_code == 200


async def test_replayed_create_with_the_same_key_returns_the_same_return(api, order, returns_db):
    buyer = order["buyer"]["id"]
    key = unique("key")
    first = await api.create_return(order["order_id"], ("L1", 1, "DEFECTIVE"), buyer=buyer, key=key)
    again = await api.create_return(order["order_id"], ("L1", 1, "DEFECTIVE"), buyer=buyer, key=key)
    assert again["return_id"] == first["return_id"]
    assert await returns_db.returns.count_documents({"order_id": order["order_id"]}) == 1
    other_body = await api.client.post(
        "/v1/returns",
        json=request_data(order["order_id"], ("L1", 2, "DEFECTIVE")),
        headers=api.as_buyer(buyer) | {"Idempotency-Key": key},
    )
    problem(other_body, 422)


async def test_list_filters_and_pages(api, order, clock):
    buyer = order["buyer"]["id"]
    made = [await api.create_return(order["order_id"], ("L1", 1, "DEFECTIVE"), buyer=buyer) for _ in range(3)]
    await api.close(made[0]["return_id"], buyer=buyer)
    seen, cursor = [], None
    while True:
        params = {"order_id": order["order_id"], "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.client.get("/v1/returns", params=params, headers=api.as_buyer(buyer))).json()
        seen += [r["return_id"] for r in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert sorted(seen) == sorted(r["return_id"] for r in made)
    closed = await api.client.get(
        "/v1/returns",
        params={"status": "closed", "seller_id": order["seller"]["id"]},
        headers=api.as_seller(order["seller"]["id"]),
    )
    assert [r["return_id"] for r in closed.json()["items"]] == [made[0]["return_id"]]
    window = {"created_from": clock.now().isoformat(), "order_id": order["order_id"]}
    assert len((await api.client.get("/v1/returns", params=window, headers=api.as_agent())).json()["items"]) == 3
    problem(await api.client.get("/v1/returns", params={"status": "lost"}, headers=api.as_agent()), 422, "status")
    # A moment MongoDB cannot store (year 1, an hour east of UTC: before year 1 in UTC) is a 422, not a 500.
    early = {"created_from": "0001-01-01T00:00:00+01:00"}
    problem(await api.client.get("/v1/returns", params=early, headers=api.as_agent()), 422, "created_from")
    problem(await api.client.get("/v1/returns", params={"cursor": "%%%"}, headers=api.as_agent()), 400, "cursor")
