"""A-to-z claims through HTTP and the broker: filing publishes `claim.filed`, who sees what (someone
else's claim is 404), bad input changes nothing, the seller's, buyer's and agent's transitions,
and concurrent filing on one order leaves one claim."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.returns.eligibility import open_return
from shared.dispute_models import Claim
from shared.models import Actor, Order, Return, ReturnStatus
from tests.integration.checks import problem
from tests.integration.returns.factories import eventually
from tests.unit.refunds.builders import make_return
from tests.unit.returns.builders import RULES, make_request, policy, unique
from tools.contract_examples import example_data

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.claims_harness"]  # its fixtures: the service, its API, a tap, the clock
DISPUTES = "/services/disputes"


async def test_filing_publishes_claim_filed_once_and_a_retry_answers_the_same_claim(
    claims_api, disputes_tap, disputes_clock
):
    api = claims_api
    order = await api.deliver()
    key = unique("key")
    claim = await api.file(order, 2000, key=key, note="Never arrived")
    assert (
        claim["status"] == "open" and claim["version"] == 1 and claim["amount"] == {"amount": 2000, "currency": "USD"}
    )
    assert claim["claim_id"].startswith("clm_") and claim["order_id"] == order.order_id
    assert claim["buyer"]["id"] == order.buyer.id and claim["seller"]["id"] == order.seller.id
    assert Claim.model_validate(claim).respond_by == disputes_clock.now() + timedelta(hours=72)
    again = await api.file(order, 2000, key=key, note="Never arrived")
    assert again == claim

    [filed] = await disputes_tap.wait_types(claim["claim_id"], ["claim.filed"])
    assert filed.source == DISPUTES and filed.sequence == 1 and filed.data == claim
    assert (await api.get(claim["claim_id"])) == claim


async def test_buyers_and_sellers_see_only_their_own(claims_api, disputes_clock):
    api = claims_api
    buyer, seller = unique("b"), unique("s")
    first = await api.file(await api.deliver(buyer_id=buyer, seller_id=seller))
    disputes_clock.advance(timedelta(seconds=1))  # pages are newest first: not the same instant
    second = await api.file(await api.deliver(buyer_id=buyer, seller_id=seller))
    stranger = await api.file(await api.deliver())
    cid = first["claim_id"]

    for headers in (api.as_buyer(buyer), api.as_seller(seller), api.as_agent()):
        assert api.ok(await api.client.get(f"/v1/claims/{cid}", headers=headers), 200)["claim_id"] == cid
    other_buyer, other_seller = api.as_buyer(stranger["buyer"]["id"]), api.as_seller(stranger["seller"]["id"])
    for headers in (other_buyer, other_seller):
        problem(await api.client.get(f"/v1/claims/{cid}", headers=headers), 404)
    problem(await api.act(cid, "withdraw", other_buyer), 404)
    problem(await api.act(cid, "respond", other_seller, kind="contest", evidence={"text": "x"}), 404)
    service = api.headers("service", "helpdesk")
    assert api.ok(await api.client.get(f"/v1/claims/{cid}", headers=service), 200)["claim_id"] == cid
    problem(await api.act(cid, "withdraw", service), 403)  # a service names whom it acts for
    acting = api.headers("service", "helpdesk", acting_for=f"buyer:{buyer}")
    assert api.ok(await api.act(cid, "withdraw", acting, note="By phone"), 200)["timeline"][-1]["actor"] == {
        "role": "buyer",
        "id": buyer,
    }
    problem(await api.client.get("/v1/claims/clm_nope", headers=api.as_agent()), 404)
    problem(await api.client.get(f"/v1/claims/{cid}"), 401)

    async def listed(headers, **query) -> list[str]:
        page = api.ok(await api.client.get("/v1/claims", params=query, headers=headers), 200)
        return [c["claim_id"] for c in page["items"]]

    mine = [second["claim_id"], first["claim_id"]]  # newest first
    assert await listed(api.as_buyer(buyer)) == mine
    assert await listed(api.as_seller(seller)) == mine
    assert await listed(api.as_buyer(buyer), buyer_id=stranger["buyer"]["id"]) == []
    assert await listed(api.as_seller(seller), seller_id=stranger["seller"]["id"]) == []
    assert await listed(api.as_agent(), buyer_id=buyer) == mine
    assert await listed(api.as_agent(), seller_id=stranger["seller"]["id"]) == [stranger["claim_id"]]
    assert await listed(api.as_agent(), order_id=first["order_id"]) == [cid]
    assert await listed(api.as_agent(), buyer_id=buyer, status="open") == [second["claim_id"]]
    assert await listed(api.as_agent(), buyer_id=buyer, status="withdrawn") == [cid]

    page = api.ok(await api.client.get("/v1/claims", params={"limit": 1}, headers=api.as_buyer(buyer)), 200)
    assert [c["claim_id"] for c in page["items"]] == mine[:1] and page["next_cursor"]
    rest = await api.client.get("/v1/claims", params={"cursor": page["next_cursor"]}, headers=api.as_buyer(buyer))
    assert [c["claim_id"] for c in api.ok(rest, 200)["items"]] == mine[1:]
    problem(await api.client.get("/v1/claims", params={"cursor": "garbage!"}, headers=api.as_agent()), 400, "cursor")
    problem(await api.client.get("/v1/claims", params={"status": "lost"}, headers=api.as_agent()), 422, "status")


async def test_bad_claims_answer_problems_naming_the_field_and_change_nothing(claims_api, disputes_tap, disputes_db):
    api = claims_api
    order = await api.deliver()
    young = await api.deliver(ordered_days_ago=5, buyer_id=order.buyer.id)
    buyer = api.as_buyer(order.buyer.id)
    good = {"order_id": order.order_id, "reason": "DEFECTIVE", "amount": {"amount": 100, "currency": "USD"}}

    async def post(body, headers=buyer):
        return await api.client.post("/v1/claims", json=body, headers=headers)

    problem(await post(good | {"order_id": "o-unknown"}), 422, "order_id")
    problem(await post(good, api.as_buyer("someone-else")), 422, "order_id")
    problem(await post(good | {"order_id": young.order_id}), 422, "order_id")  # the window opens at 15 days
    problem(await post(good | {"amount": {"amount": 10_099, "currency": "USD"}}), 422, "amount.amount")
    problem(await post(good | {"amount": {"amount": 0, "currency": "USD"}}), 422, "amount.amount")
    problem(await post(good | {"amount": {"amount": 10, "currency": "EUR"}}), 422, "amount.currency")
    problem(await post(good | {"amount": {"amount": "ten", "currency": "USD"}}), 422, "amount.amount")
    problem(await post(good | {"reason": "I_CHANGED_MY_MIND"}), 422, "reason")
    problem(await post(good | {"reason": "RETURN_NOT_REFUNDED"}), 422, "return_id")
    problem(await post(good | {"reason": "PARTIAL_REFUND_DISPUTED"}), 422, "reason")
    problem(await post(good | {"surprise": 1}), 422, "surprise")
    problem(await post(good, api.as_seller(order.seller.id)), 403)
    problem(await api.client.post("/v1/claims", json=good), 401)

    mine = {"order_id": {"$in": [order.order_id, young.order_id]}}
    assert await disputes_db.claims.count_documents(mine) == 0
    claim = await api.file(order, 100, reason="DEFECTIVE")  # once its event is out, any other would be too
    await disputes_tap.wait_types(claim["claim_id"], ["claim.filed"])
    ours = [e for e in disputes_tap.events if e.data.get("order_id") in (order.order_id, young.order_id)]
    assert [e.subject for e in ours] == [claim["claim_id"]]
    problem(await post(good), 409)  # one open claim per order
    assert await disputes_db.claims.count_documents(mine) == 1


async def test_seller_refunds_contests_and_agent_decides(claims_api, disputes_tap):
    api = claims_api
    order = await api.deliver()
    seller, buyer, agent = api.as_seller(order.seller.id), api.as_buyer(order.buyer.id), api.as_agent()
    claim = await api.file(order, 3000)
    cid = claim["claim_id"]

    problem(await api.act(cid, "respond", seller, kind="refund", amount={"amount": 3001, "currency": "USD"}), 422)
    problem(await api.act(cid, "respond", seller, kind="contest"), 422, "evidence")
    problem(await api.act(cid, "respond", buyer, kind="contest", evidence={"text": "x"}), 403)
    problem(await api.act(cid, "decide", agent, outcome="deny", note="no"), 409)  # not contested
    evidence = {"carrier": "UPS", "tracking_number": "1Z999"}
    contested = api.ok(await api.act(cid, "respond", seller, kind="contest", evidence=evidence), 200)
    assert contested["status"] == "contested" and contested["seller_response"]["evidence"]["carrier"] == "UPS"
    problem(await api.act(cid, "respond", seller, kind="refund", amount={"amount": 1, "currency": "USD"}), 409)
    problem(await api.act(cid, "decide", seller, outcome="grant", note="mine"), 403)
    problem(await api.act(cid, "decide", agent, outcome="grant"), 422, "note")
    granted = api.ok(await api.act(cid, "decide", agent, outcome="grant", note="No delivery scan"), 200)
    assert granted["status"] == "paying" and granted["decision"]["outcome"] == "granted"
    assert granted["payment"] == {"refund_id": f"rf_{cid}", "amount": claim["amount"], "paid": None, "issued_at": None}
    problem(await api.act(cid, "withdraw", buyer), 409)
    events = await disputes_tap.wait_types(cid, ["claim.filed", "claim.seller_responded", "claim.granted"])
    assert [e.sequence for e in events] == [1, 2, 3] and events[-1].data == granted

    refunded = await api.file(await api.deliver(seller_id=order.seller.id), 2500)
    paying = api.ok(
        await api.act(
            refunded["claim_id"], "respond", seller, kind="refund", amount={"amount": 2000, "currency": "USD"}
        ),
        200,
    )
    assert paying["status"] == "paying" and paying["payment"]["amount"]["amount"] == 2000
    [_, responded] = await disputes_tap.wait_types(refunded["claim_id"], ["claim.filed", "claim.seller_responded"])
    assert responded.data["payment"]["refund_id"] == f"rf_{refunded['claim_id']}"

    denied_order = await api.deliver()
    denied = await api.file(denied_order)
    did, other_seller = denied["claim_id"], api.as_seller(denied_order.seller.id)
    api.ok(await api.act(did, "respond", other_seller, kind="contest", evidence={"text": "Delivered"}), 200)
    result = api.ok(await api.act(did, "decide", agent, outcome="deny", note="Signed for"), 200)
    assert result["status"] == "denied" and result["decision"]["note"] == "Signed for"
    await disputes_tap.wait_types(did, ["claim.filed", "claim.seller_responded", "claim.denied"])

    withdrawn_order = await api.deliver()
    withdrawn = await api.file(withdrawn_order)
    wid = withdrawn["claim_id"]
    problem(await api.act(wid, "withdraw", api.as_seller(withdrawn_order.seller.id)), 403)
    result = api.ok(await api.act(wid, "withdraw", api.as_buyer(withdrawn_order.buyer.id), note="It came"), 200)
    assert result["status"] == "withdrawn" and result["timeline"][-1]["note"] == "It came"
    await disputes_tap.wait_types(wid, ["claim.filed", "claim.withdrawn"])
    assert (await api.file(withdrawn_order))["status"] == "open"  # no open claim left on the order


async def test_concurrent_filing_on_one_order_leaves_one_claim(claims_api, disputes_tap, disputes_db):
    api = claims_api
    order = await api.deliver()
    body = {"order_id": order.order_id, "reason": "ITEM_NOT_RECEIVED", "amount": {"amount": 500, "currency": "USD"}}

    async def post(n: int):
        headers = api.as_buyer(order.buyer.id, **({"Idempotency-Key": f"k{n}"} if n % 2 else {}))
        return await api.client.post("/v1/claims", json=body, headers=headers)

    responses = await asyncio.gather(*(post(n) for n in range(8)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7, [r.text for r in responses]
    [created] = [r.json() for r in responses if r.status_code == 201]
    assert await disputes_db.claims.count_documents({"order_id": order.order_id}) == 1
    await disputes_tap.wait_types(created["claim_id"], ["claim.filed"])
    filed = [e for e in disputes_tap.events if e.type == "claim.filed" and e.data["order_id"] == order.order_id]
    assert len(filed) == 1


async def received_overdue(api: Any, order: Order, now: datetime, disputes_db: Any) -> Return:
    """A return of `order` received 30 hours ago, its refund due an hour ago, seen by the service."""
    ret = open_return(
        order,
        make_request(order, ("L1", 1, "DEFECTIVE")),
        return_id=unique("ret"),
        policy=policy(),
        rules=RULES,
        already_returned={},
        buyer_flagged=False,
        actor=Actor(role="buyer", id=order.buyer.id),
        now=now - timedelta(days=1),
    )[-1][1]
    overdue = {"received_at": now - timedelta(hours=30), "refund_due_at": now - timedelta(hours=1)}
    received = ret.model_copy(update={"status": ReturnStatus.RECEIVED, "version": 4, **overdue})
    await api.publish("return.received", received, received.return_id, sequence=4)
    seen = {"_id": order.order_id, f"returns.{received.return_id}": {"$exists": True}}
    await eventually(lambda: disputes_db.order_facts.find_one(seen), what="the return in the order's facts")
    return received


async def test_a_return_seen_on_the_broker_decides_what_may_be_claimed(
    claims_api, disputes_tap, disputes_db, disputes_clock
):
    """`return.received` with its refund deadline passed allows RETURN_NOT_REFUNDED at once (the
    order is four days old), and is no RETURN_REFUSED."""
    api = claims_api
    order = await api.deliver(ordered_days_ago=4)
    received = await received_overdue(api, order, disputes_clock.now(), disputes_db)
    body = {"reason": "RETURN_REFUSED", "return_id": received.return_id}
    response = await api.client.post(
        "/v1/claims",
        json={"order_id": order.order_id, "amount": {"amount": 1500, "currency": "USD"}} | body,
        headers=api.as_buyer(order.buyer.id),
    )
    problem(response, 422, "return_id")
    claim = await api.file(order, 1500, reason="RETURN_NOT_REFUNDED", return_id=received.return_id)
    assert claim["return_id"] == received.return_id and claim["reason"] == "RETURN_NOT_REFUNDED"
    await disputes_tap.wait_types(claim["claim_id"], ["claim.filed"])


async def test_a_return_refunded_late_is_no_ground_for_return_not_refunded(claims_api, disputes_db, disputes_clock):
    """The returns service publishes nothing once a return is refunded: `refund.issued` naming the
    return tells the disputes service it was paid, after its deadline too, so the claim is refused."""
    api = claims_api
    order = await api.deliver(ordered_days_ago=4)
    received = await received_overdue(api, order, disputes_clock.now(), disputes_db)
    example, _ = example_data("refund.issued")
    refund = example.model_copy(
        update={"refund_id": unique("rf"), "order_id": order.order_id, "return_id": received.return_id}
    )
    await api.publish("refund.issued", refund, refund.refund_id)
    paid = {"_id": order.order_id, f"refunded_returns.{received.return_id}": refund.refund_id}
    await eventually(lambda: disputes_db.order_facts.find_one(paid), what="the refund noted against its return")
    response = await api.client.post(
        "/v1/claims",
        json={
            "order_id": order.order_id,
            "amount": {"amount": 1500, "currency": "USD"},
            "reason": "RETURN_NOT_REFUNDED",
            "return_id": received.return_id,
        },
        headers=api.as_buyer(order.buyer.id),
    )
    problem(response, 422, "return_id")
    assert await disputes_db.claims.count_documents({"order_id": order.order_id}) == 0


async def test_return_postage_the_buyer_paid_may_still_be_claimed_once_the_order_is_refunded(claims_api, disputes_db):
    """The refunds service's cap counts the return postage the buyer paid on an unpaid label once the
    item is back; so does what a claim may still ask for."""
    api = claims_api
    order = await api.deliver()
    ret = make_return(order, ("L1", 1, "DEFECTIVE"), label="unpaid", paid_by="seller", postage=750)
    await api.publish("return.received", ret, ret.return_id, sequence=ret.version)
    example, _ = example_data("refund.issued")
    paid = {"amount": order.total_paid(), "currency": order.currency}
    refund = example.model_copy(update={"refund_id": unique("rf"), "order_id": order.order_id, "return_id": None})
    refund = refund.model_copy(update={"amount": refund.amount.model_validate(paid)})
    await api.publish("refund.issued", refund, refund.refund_id)
    seen = {
        "_id": order.order_id,
        f"refunds.{refund.refund_id}": {"$exists": True},
        f"returns.{ret.return_id}": {"$exists": True},
    }
    await eventually(lambda: disputes_db.order_facts.find_one(seen), what="the return and the refund in the facts")

    too_much = await api.client.post(
        "/v1/claims",
        json={"order_id": order.order_id, "reason": "DEFECTIVE", "amount": {"amount": 751, "currency": "USD"}},
        headers=api.as_buyer(order.buyer.id),
    )
    problem(too_much, 422, "amount.amount")
    claim = await api.file(order, 750, reason="DEFECTIVE")
    assert claim["amount"] == {"amount": 750, "currency": "USD"}
