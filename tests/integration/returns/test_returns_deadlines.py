"""The deadline job with short durations and two replicas running it: each deadline acts exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from asgi_lifespan import LifespanManager

from services.returns.app import create_app
from tests.integration.checks import settle
from tests.integration.returns.factories import order_data, request_data, unique

pytestmark = pytest.mark.integration

SETTINGS = {
    "jobs_enabled": True,
    "job_interval": timedelta(milliseconds=30),
    "response_deadline": timedelta(seconds=60),
    "reminder_lead": timedelta(seconds=20),
    "authorization_validity": timedelta(seconds=120),
}


@pytest.fixture(scope="module")
async def replica(returns_app, returns_settings, clock) -> AsyncIterator:
    """A second instance of the service on the same database and queues, with its own job."""
    app = create_app(returns_settings, clock)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as _:
        yield app


async def test_remind_authorize_and_expire_exactly_once_with_two_runners(api, tap, clock, returns_app, replica):
    who = {"buyer_id": unique("b"), "seller_id": unique("s")}
    seller = who["seller_id"]
    _, unanswered = await api.order_with_return(("L1", 1, "DEFECTIVE"), **who)
    _, answered = await api.order_with_return(("L1", 1, "NO_LONGER_NEEDED"), **who)
    await api.authorize(answered["return_id"], seller=seller)
    _, returnless = await api.order_with_return(("L1", 1, "DEFECTIVE"), **who)
    await api.authorize(returnless["return_id"], seller=seller, returnless=True)
    late = await api.put_order(order_data(delivered_at=clock.now() - timedelta(days=60), **who))
    outside = await api.client.post(
        "/v1/returns",
        headers=api.as_agent(),
        json=request_data(late["order_id"], ("L1", 1, "DEFECTIVE")) | {"policy_exception": True},
    )
    assert outside.status_code == 201 and outside.json()["in_policy"] is False
    outside = outside.json()

    clock.advance(timedelta(seconds=30))  # nothing due yet
    await settle("deadlines", returns_app, replica)
    clock.advance(timedelta(seconds=15))  # 15 s before the response deadline: inside the 20 s lead
    await settle("deadlines", returns_app, replica)
    clock.advance(timedelta(seconds=20))  # past the deadline: the platform answers in-policy requests
    await settle("deadlines", returns_app, replica)
    platform = await api.get_return(unanswered["return_id"])
    assert (
        platform["status"] == "authorized"
        and platform["authorization"]["late"]
        and platform["authorization"]["automatic"]
    )
    assert platform["authorization"]["label_type"] == "prepaid"
    assert platform["authorization"]["return_shipping_paid_by"] == "seller"
    assert platform["timeline"][-1]["actor"] == {"role": "platform", "id": "returns"}
    clock.advance(timedelta(seconds=125))  # past every ship-by: unshipped authorizations expire
    await settle("deadlines", returns_app, replica)

    await tap.wait_types(
        unanswered["return_id"], ["return.created", "seller.response_due_soon", "return.authorized", "return.expired"]
    )
    await tap.wait_types(answered["return_id"], ["return.created", "return.authorized", "return.expired"])
    # Out of policy: no reminder (it would promise a platform authorization that never comes).
    await tap.wait_types(outside["return_id"], ["return.created"])
    await tap.wait_types(returnless["return_id"], ["return.created", "return.authorized"])
    reminder = tap.of(unanswered["return_id"])[1]
    assert reminder.data["status"] == "requested" and reminder.sequence == 2
    final = await api.get_return(unanswered["return_id"])
    assert [t["action"] for t in final["timeline"]] == ["request", "remind", "authorize", "expire"]
    assert final["version"] == 4 and final["expired_at"] is not None
    left = await api.get_return(outside["return_id"])
    assert left["status"] == "requested"  # out of policy: the seller decides
    assert [t["action"] for t in left["timeline"]] == ["request"]  # and nobody reminded them


async def test_the_platforms_authorization_orders_a_replacement_ahead_once(api, tap, clock, returns_app, replica):
    who = {"buyer_id": unique("b"), "seller_id": unique("s")}
    await api.put_policy(who["seller_id"], offers_replacements=True, replacement_ships="at_authorization")
    order = await api.put_order(order_data(**who))
    body = request_data(order["order_id"], ("L1", 1, "DEFECTIVE")) | {"resolution": "replacement"}
    response = await api.client.post("/v1/returns", json=body, headers=api.as_buyer(who["buyer_id"]))
    assert response.status_code == 201, response.text
    rid = response.json()["return_id"]
    clock.advance(timedelta(seconds=65))  # past the response deadline at once: authorized, not reminded
    await settle("deadlines", returns_app, replica)
    events = await tap.wait_types(rid, ["return.created", "return.authorized", "return.replacement_ordered"])
    assert [e.sequence for e in events] == [1, 2, 3] and events[-1].data["replacement"]["status"] == "ordered"
    assert events[1].data["authorization"]["late"] and events[1].data["replacement"]["status"] == "requested"
