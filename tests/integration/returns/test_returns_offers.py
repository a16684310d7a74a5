"""Keep-it offers over HTTP on the real store and broker: made, accepted, declined, expired by the
deadline job on two replicas, refused where they must be, and paid by `return.refunded` of kind offer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from services.returns.app import create_app
from shared import marketplaces
from shared.events import new_event
from shared.models import Refund
from tests.integration.checks import settle
from tests.integration.returns.conftest import T0
from tests.integration.returns.factories import ReturnsApi, eventually, refund_data, unique

pytestmark = pytest.mark.integration

VALIDITY = timedelta(seconds=60)
SETTINGS = {
    "jobs_enabled": True,
    "job_interval": timedelta(milliseconds=30),
    "offer_validity": VALIDITY,
    "response_deadline": timedelta(seconds=600),
    "reminder_lead": timedelta(seconds=100),
    "authorization_validity": timedelta(seconds=1200),
}
KEPT = "the buyer accepted an offer to keep the item"


@pytest.fixture(scope="module")
async def replica(returns_app, returns_settings, clock) -> AsyncIterator:
    """A second instance on the same database and queues, running its own deadline job."""
    app = create_app(returns_settings, clock)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as _:
        yield app


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


async def fresh(api: ReturnsApi, *, authorized: bool = False) -> tuple[dict[str, Any], str, str]:
    """A return of two mugs (2 x 1500 USD) by a buyer and seller of its own, and who they are."""
    buyer, seller = unique("b"), unique("s")
    _, ret = await api.order_with_return(("L1", 2, "DEFECTIVE"), buyer_id=buyer, seller_id=seller)
    if authorized:
        ret = await api.authorize(ret["return_id"], seller=seller)
    return ret, buyer, seller


async def offer(api: ReturnsApi, return_id: str, headers: dict[str, str], amount: int = 1000, **extra: Any) -> Any:
    return await api.client.post(
        f"/v1/returns/{return_id}/offers", json={"amount": usd(amount), "note": "keep them", **extra}, headers=headers
    )


async def answer(api: ReturnsApi, return_id: str, offer_id: str, verb: str, headers: dict[str, str]) -> Any:
    return await api.client.post(f"/v1/returns/{return_id}/offers/{offer_id}/{verb}", json={}, headers=headers)


async def test_an_offer_made_and_accepted_settles_the_return_and_its_refund_ends_it(api, tap, upstream, returns_db):
    ret, buyer, seller = await fresh(api)
    rid = ret["return_id"]
    keyed = api.as_seller(seller) | {"Idempotency-Key": unique("k")}
    made = await offer(api, rid, keyed)
    assert made.status_code == 201, made.text
    assert made.headers["Location"] == f"/v1/returns/{rid}"
    assert made.headers["ETag"] == f'"{made.json()["version"]}"'  # for an If-Match on the answer
    (open_offer,) = made.json()["offers"]
    assert open_offer["offer_id"].startswith("ofr_") and open_offer["status"] == "open"
    assert open_offer["amount"] == usd(1000) and open_offer["made_by"] == {"role": "seller", "id": seller}
    assert open_offer["expires_at"] == (T0 + VALIDITY).isoformat().replace("+00:00", "Z")
    again = await offer(api, rid, keyed)  # a retry: the same offer, nothing new
    assert again.status_code == 201 and again.json() == made.json() and again.headers["ETag"] == made.headers["ETag"]
    doc = await returns_db.returns.find_one({"_id": rid})
    assert doc["offer_expires_at"].replace(tzinfo=T0.tzinfo) == T0 + VALIDITY

    second = await offer(api, rid, api.as_agent())
    assert second.status_code == 409 and "an offer is already open" in second.json()["detail"]

    accepted = await answer(api, rid, open_offer["offer_id"], "accept", api.as_buyer(buyer))
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "requested" and body["offers"][0]["status"] == "accepted"
    assert body["settlement"] == {"kept_item": True, "offer_id": open_offer["offer_id"], "amount": usd(1000)}
    assert "offer_expires_at" not in await returns_db.returns.find_one({"_id": rid})
    repeat = await answer(api, rid, open_offer["offer_id"], "accept", api.as_buyer(buyer))
    assert repeat.status_code == 200 and repeat.json()["version"] == body["version"]

    events = await tap.wait_types(rid, ["return.created", "return.offer_made", "return.offer_accepted"])
    assert events[1].data["offers"][0]["status"] == "open"
    assert events[2].data["settlement"]["offer_id"] == open_offer["offer_id"]

    paid = refund_data(body, amount=1000, refund_id="rf_" + open_offer["offer_id"])
    paid |= {"kind": "offer", "offer_id": open_offer["offer_id"]}
    refund = Refund.model_validate(paid)
    await upstream.publish(
        new_event("return.refunded", service="test-upstream", subject=rid, data=refund, sequence=1, time=T0)
    )
    done = await eventually(lambda: _refunded(api, rid), what="the return refunded by the offer's refund")
    assert done["refund"]["refund_id"] == "rf_" + open_offer["offer_id"] and done["refund"]["amount"] == usd(1000)


async def _refunded(api: ReturnsApi, return_id: str) -> dict[str, Any] | None:
    ret = await api.get_return(return_id)
    return ret if ret["status"] == "refunded" else None


@pytest.mark.parametrize("authorized", [False, True])
async def test_after_acceptance_the_items_journey_is_refused(api, authorized):
    ret, buyer, seller = await fresh(api, authorized=authorized)
    rid = ret["return_id"]
    offer_id = (await offer(api, rid, api.as_seller(seller))).json()["offers"][0]["offer_id"]
    assert (await answer(api, rid, offer_id, "accept", api.as_agent())).status_code == 200
    attempts = [
        ("authorize", api.as_seller(seller), {}),
        ("reject", api.as_seller(seller), {"reason_code": "OTHER"}),
        ("close", api.as_buyer(buyer), {"code": "BUYER_WITHDREW"}),
        ("ship", api.as_buyer(buyer), {"carrier": "UPS", "tracking_number": "1Z"}),
        ("receive", api.as_seller(seller), {"lines": [{"line_id": "L1", "quantity": 2, "condition": "sellable"}]}),
    ]
    for action, headers, body in attempts:
        response = await api.client.post(f"/v1/returns/{rid}/{action}", json=body, headers=headers)
        assert response.status_code == 409, (action, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert KEPT in response.json()["detail"], action
    another = await offer(api, rid, api.as_seller(seller))
    assert another.status_code == 409 and KEPT in another.json()["detail"]


async def test_a_declined_offer_lets_the_return_go_on(api, tap):
    ret, buyer, seller = await fresh(api)
    rid = ret["return_id"]
    offer_id = (await offer(api, rid, api.as_seller(seller))).json()["offers"][0]["offer_id"]
    declined = await api.client.post(
        f"/v1/returns/{rid}/offers/{offer_id}/decline", json={"note": "I want my money"}, headers=api.as_buyer(buyer)
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["offers"][0]["status"] == "declined" and declined.json()["settlement"] is None
    late = await answer(api, rid, offer_id, "accept", api.as_buyer(buyer))
    assert late.status_code == 409 and "declined already" in late.json()["detail"]
    better = await offer(api, rid, api.as_seller(seller), amount=3000)
    assert better.status_code == 201 and [o["status"] for o in better.json()["offers"]] == ["declined", "open"]
    assert (await api.authorize(rid, seller=seller))["status"] == "authorized"
    await tap.wait_types(
        rid, ["return.created", "return.offer_made", "return.offer_declined", "return.offer_made", "return.authorized"]
    )


async def test_who_may_offer_and_answer(api):
    ret, buyer, seller = await fresh(api)
    rid = ret["return_id"]
    assert (await offer(api, rid, api.as_seller(unique("s")))).status_code == 404  # someone else's return
    assert (await offer(api, rid, api.as_buyer(buyer))).status_code == 403
    too_much = await offer(api, rid, api.as_seller(seller), amount=3001)
    assert too_much.status_code == 422
    assert too_much.json()["errors"][0]["field"] == "amount.amount" and "at most 3000" in too_much.text
    euros = await api.client.post(
        f"/v1/returns/{rid}/offers",
        json={"amount": {"amount": 100, "currency": "EUR"}},
        headers=api.as_seller(seller),
    )
    assert euros.status_code == 422 and euros.json()["errors"][0]["field"] == "amount.currency"
    stale = await offer(api, rid, api.as_seller(seller) | {"If-Match": '"99"'})
    assert stale.status_code == 412 and stale.json()["type"].endswith("/precondition-failed")
    weak = await offer(api, rid, api.as_seller(seller) | {"If-Match": f'W/"{ret["version"]}"'})
    assert weak.status_code == 412  # strong comparison: a weak tag never matches
    made = await offer(api, rid, api.as_seller(seller) | {"If-Match": f'"{ret["version"]}"'})
    assert made.status_code == 201
    offer_id = made.json()["offers"][0]["offer_id"]
    assert (await answer(api, rid, offer_id, "accept", api.as_seller(seller))).status_code == 403
    assert (await answer(api, rid, offer_id, "accept", api.as_buyer(unique("b")))).status_code == 404
    missing = await answer(api, rid, "ofr_nope", "decline", api.as_buyer(buyer))
    assert missing.status_code == 404 and missing.json()["title"] == "Offer not found"


async def test_an_unanswered_offer_expires_once_with_two_replicas(api, tap, clock, returns_app, replica, returns_db):
    ret, buyer, seller = await fresh(api, authorized=True)
    rid = ret["return_id"]
    offer_id = (await offer(api, rid, api.as_seller(seller))).json()["offers"][0]["offer_id"]
    await settle("deadlines", returns_app, replica)
    assert (await api.get_return(rid))["offers"][0]["status"] == "open"  # not yet due
    clock.advance(VALIDITY + timedelta(seconds=1))
    await settle("deadlines", returns_app, replica)
    await settle("deadlines", returns_app, replica)
    await tap.wait_types(rid, ["return.created", "return.authorized", "return.offer_made", "return.offer_expired"])
    expired = await api.get_return(rid)
    assert expired["offers"][0]["status"] == "expired" and expired["status"] == "authorized"
    assert expired["timeline"][-1]["actor"] == {"role": "platform", "id": "returns"}
    assert "offer_expires_at" not in await returns_db.returns.find_one({"_id": rid})
    late = await answer(api, rid, offer_id, "accept", api.as_buyer(buyer))
    assert late.status_code == 409 and "the offer expired at" in late.json()["detail"]


async def test_the_deadline_jobs_leave_a_settled_return_alone(api, tap, clock, returns_app, replica):
    settled, plain = [], []
    for authorized in (False, True):
        ret, buyer, seller = await fresh(api, authorized=authorized)
        offer_id = (await offer(api, ret["return_id"], api.as_seller(seller))).json()["offers"][0]["offer_id"]
        assert (await answer(api, ret["return_id"], offer_id, "accept", api.as_buyer(buyer))).status_code == 200
        settled.append(ret["return_id"])
        plain.append((await fresh(api, authorized=authorized))[0]["return_id"])
    store, now = returns_app.state.lifecycle.store, clock.now()
    clock.advance(timedelta(seconds=550))  # inside the reminder lead
    await settle("deadlines", returns_app, replica)
    clock.advance(timedelta(seconds=100))  # past the response deadline
    await settle("deadlines", returns_app, replica)
    clock.advance(timedelta(seconds=1300))  # past every ship-by
    await settle("deadlines", returns_app, replica)

    # The unsettled ones moved on (the jobs ran); the settled ones were never selected.
    await tap.wait_types(
        plain[0], ["return.created", "seller.response_due_soon", "return.authorized", "return.expired"]
    )
    await tap.wait_types(plain[1], ["return.created", "return.authorized", "return.expired"])
    await tap.wait_types(settled[0], ["return.created", "return.offer_made", "return.offer_accepted"])
    await tap.wait_types(
        settled[1], ["return.created", "return.authorized", "return.offer_made", "return.offer_accepted"]
    )
    later = clock.now()
    chosen = {
        r.return_id
        for r in [
            *await store.due_for_reminder(now, later, 1000, list(marketplaces.current())),
            *await store.past_response_deadline(later, 1000, list(marketplaces.current())),
            *await store.past_ship_by(later, 1000, list(marketplaces.current())),
        ]
    }
    assert not chosen & set(settled)
