"""Direct refunds over HTTP: Idempotency-Key, the per-order cap (also under concurrency), bad input."""

from __future__ import annotations

import asyncio

import pytest

from services.refunds.domain import return_refund_id
from tests.unit.refunds.builders import make_return, money

pytestmark = pytest.mark.integration


def post(service, body, *, key="k-1", role="seller", sub="s-1"):
    headers = service.token(role, sub) | ({"Idempotency-Key": key} if key else {})
    return service.http.post("/v1/refunds", json=body, headers=headers)


async def test_refund_beyond_what_was_paid_is_refused_and_nothing_paid(service, published, stripe_stub):
    order = await service.delivered(lines=[("L1", 2, 1000)], shipping=500)  # paid 2500
    first = await post(service, {"order_id": order.order_id, "lines": [{"line_id": "L1", "quantity": 2}]})
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["status"], body["kind"], body["amount"]["amount"]) == ("issued", "direct", 2000)
    assert first.headers["location"] == f"/v1/refunds/{body['refund_id']}"
    replayed = await post(service, {"order_id": order.order_id, "lines": [{"line_id": "L1", "quantity": 2}]})
    assert replayed.headers["location"] == first.headers["location"]  # the stored answer, headers too
    located = await service.http.get(first.headers["location"], headers=service.token("seller", "s-1"))
    assert located.status_code == 200 and located.json()["refund_id"] == body["refund_id"]

    refused = await post(service, {"order_id": order.order_id, "lines": [{"line_id": "L1", "quantity": 1}]}, key="k-2")
    assert refused.status_code == 422
    problem = refused.json()
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert problem["available"] == money(500) and problem["errors"][0]["field"] == "lines"
    assert [c.params["amount"] for c in stripe_stub.posts()] == ["2000"]
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"], ledger["available"]) == (2000, 0, 500)
    listed = await service.http.get(
        "/v1/refunds", params={"order_id": order.order_id}, headers=service.token("agent", "a-1")
    )
    assert len(listed.json()["items"]) == 1  # the refused one left nothing behind

    rest = await post(service, {"order_id": order.order_id, "lines": [], "refund_shipping": True}, key="k-3")
    assert rest.status_code == 201 and rest.json()["amount"]["amount"] == 500


async def test_concurrent_refunds_of_one_order_never_exceed_what_was_paid(service, stripe_stub):
    order = await service.delivered(lines=[("L1", 4, 1000)], shipping=0)  # paid 4000
    body = {"order_id": order.order_id, "lines": [{"line_id": "L1", "quantity": 3}]}  # 3000 each

    responses = await asyncio.gather(*(post(service, body, key=f"k-{n}") for n in range(4)))

    assert sorted(r.status_code for r in responses) == [201, 422, 422, 422]
    assert stripe_stub.paid_total() == 3000
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"], ledger["available"]) == (3000, 0, 1000)


async def test_a_retried_request_pays_once(service, stripe_stub):
    order = await service.delivered()
    body = {"order_id": order.order_id}  # everything: lines and shipping
    first, second = await post(service, body, key="same"), await post(service, body, key="same")
    assert first.status_code == second.status_code == 201
    assert first.json()["refund_id"] == second.json()["refund_id"]
    assert first.json()["amount"]["amount"] == order.total_paid()
    assert len(stripe_stub.posts()) == 1
    changed = await post(service, {"order_id": order.order_id, "lines": []}, key="same")
    assert changed.status_code == 422  # same key, different body


async def test_bad_requests_name_the_field_and_change_nothing(service, stripe_stub):
    order = await service.delivered(lines=[("L1", 2, 1000)])
    cases = [
        ({"order_id": order.order_id}, None, 422, "Idempotency-Key"),
        ({"order_id": order.order_id, "lines": [{"line_id": "L1", "quantity": 3}]}, "a", 422, "lines[0].quantity"),
        ({"order_id": order.order_id, "lines": [{"line_id": "L7", "quantity": 1}]}, "b", 422, "lines[0].line_id"),
        ({"order_id": order.order_id, "other_concession": money(100, "EUR")}, "c", 422, "other_concession.currency"),
        ({"order_id": order.order_id, "lines": []}, "d", 422, "lines"),
        ({"order_id": order.order_id, "return_shipping_concession": money(1)}, "e", 422, "return_shipping_concession"),
        ({}, "f", 422, "return_id"),
        ({"order_id": order.order_id, "amount": 5}, "g", 422, "amount"),
        ({"order_id": order.order_id, "other_concession": money(2**63)}, "k", 422, "other_concession.amount"),
        ({"order_id": order.order_id, "other_concession": money(2**63 - 1)}, "l", 422, "other_concession.amount"),
        ({"order_id": order.order_id, "other_concession": money(1, "ZZZ")}, "m", 422, "other_concession.currency"),
    ]
    for body, key, status, field in cases:
        response = await post(service, body, key=key)
        assert response.status_code == status, (body, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (body, response.json())
    assert (await post(service, {"order_id": "o-unknown"}, key="h")).status_code == 404
    assert (await post(service, {"order_id": order.order_id}, key="i", sub="s-2")).status_code == 404
    assert (await post(service, {"order_id": order.order_id}, key="j", role="buyer", sub="b-1")).status_code == 403
    unauthenticated = await service.http.post("/v1/refunds", json={"order_id": order.order_id})
    assert unauthenticated.status_code == 401
    assert stripe_stub.calls == []
    assert (await service.ledger(order.order_id))["available"] == order.total_paid()


async def test_a_return_refund_is_paid_at_most_once_even_by_two_sellers_requests(service, stripe_stub, wait_until):
    order = await service.delivered(lines=[("L1", 2, 1000)])
    ret = make_return(order, ("L1", 2, "DEFECTIVE"), refund_mode="manual")
    event = await service.send("return.received", ret)
    await wait_until(lambda: service.handled(event.id), message="return.received not handled")
    body = {"return_id": ret.return_id}
    responses = await asyncio.gather(post(service, body, key="x"), post(service, body, key="y"))
    assert sorted(r.status_code for r in responses) == [201, 409]
    assert len(stripe_stub.posts()) == 1


async def test_a_replacement_that_loses_the_race_for_the_order_puts_the_due_refund_back(
    service, stripe_stub, wait_until, monkeypatch
):
    order = await service.delivered(lines=[("L1", 2, 1000)], shipping=0)
    ret = make_return(order, ("L1", 2, "DEFECTIVE"), refund_mode="manual")
    event = await service.send("return.received", ret)
    await wait_until(lambda: service.handled(event.id), message="return.received not handled")
    refund_id = return_refund_id(ret.return_id)
    refunds, store = service.app.state.refunds, service.app.state.store
    # A direct refund reserves most of the order between the seller's check and their payment.
    original_check = refunds._check_room

    async def check_then_lose_the_race(order_id, breakdown, ledger=None):
        await original_check(order_id, breakdown, ledger)
        await store.ledgers.reserve(order_id, "rf_concurrent", 1500)

    monkeypatch.setattr(refunds, "_check_room", check_then_lose_the_race)
    response = await post(service, {"return_id": ret.return_id})
    assert response.status_code == 422 and response.json()["available"] == money(500)

    after = (await store.get(refund_id)).refund
    assert (after.status, after.amount.amount, after.actor.role) == ("due", 2000, "platform")
    assert stripe_stub.calls == []
