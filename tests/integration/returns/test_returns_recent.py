"""A transition starts from the return as this process last wrote it (`ReturnsStore.recent`), without
a read. The copy must equal a fresh read after every write, and a stale one (another replica wrote
since) must never show: the write from it loses its compare-and-set and the request is decided on a
fresh read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from services.returns.app import create_app
from tests.integration.returns.factories import ReturnsApi
from tests.integration.returns.test_returns_replacement_flow import replacing_return

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def other(returns_settings, clock) -> AsyncIterator[ReturnsApi]:
    """Another replica of the service on the same database."""
    app = create_app(returns_settings, clock)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://other") as client:
            yield ReturnsApi(client, returns_settings.jwt_secret)


async def same_as_stored(returns_app, return_id: str) -> None:
    store = returns_app.state.lifecycle.store
    recent, fresh = store.recent(return_id), await store.get_return(return_id)
    assert recent is not None
    assert recent == fresh


async def test_the_copy_is_what_a_fresh_read_gives_after_every_write(api, returns_app):
    _, ret = await api.order_with_return(("L1", 1, "DEFECTIVE"), buyer_id="b-r1", seller_id="s-r1")
    rid = ret["return_id"]
    await same_as_stored(returns_app, rid)
    await api.authorize(rid, seller="s-r1")
    await same_as_stored(returns_app, rid)
    await api.ship(rid, buyer="b-r1")
    await same_as_stored(returns_app, rid)
    received = await api.receive(rid, [("L1", 1, "sellable")], seller="s-r1")
    await same_as_stored(returns_app, rid)
    assert received["status"] == "received" and received["version"] == ret["version"] + 3


async def test_a_stale_copy_never_shows(api, other, returns_app):
    _, ret = await api.order_with_return(("L1", 1, "DEFECTIVE"), buyer_id="b-r2", seller_id="s-r2")
    rid = ret["return_id"]
    await api.authorize(rid, seller="s-r2")
    await other.ship(rid, buyer="b-r2")  # this process's copy still says "authorized"

    # Legal from the stale copy, illegal now: refused from the fresh state, not written.
    closing = await api.client.post(
        f"/v1/returns/{rid}/close", json={"code": "BUYER_WITHDREW"}, headers=api.as_buyer("b-r2")
    )
    assert closing.status_code == 409, closing.text
    # Legal now: written on the fresh state, the other replica's change kept.
    received = await api.receive(rid, [("L1", 1, "sellable")], seller="s-r2")
    assert received["status"] == "received"
    assert received["shipment"]["tracking_number"] == "1Z999"
    assert [e["action"] for e in received["timeline"]][-3:] == ["authorize", "ship", "receive"]
    await same_as_stored(returns_app, rid)


async def test_a_repeated_confirmation_is_answered_from_the_fresh_state(api, other):
    ret, who = await replacing_return(api, "at_authorization", "L1", 1, "DEFECTIVE", "SKU-MUG-BLUE")
    rid, orders = ret["return_id"], api.as_service("orders")
    await api.authorize(rid, seller=who["seller_id"])
    shipment = {"status": "shipped", "carrier": "DHL", "tracking_number": "JD0001"}
    assert (await api.client.put(f"/v1/returns/{rid}/replacement", json=shipment, headers=orders)).status_code == 200
    await other.ship(rid, buyer=who["buyer_id"])  # this process's copy still says "authorized"
    # The order system retries its confirmation: a no-op on the copy, which would answer "authorized".
    again = await api.client.put(f"/v1/returns/{rid}/replacement", json=shipment, headers=orders)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "shipped"


async def test_an_offer_another_replica_made_is_found_though_the_copy_lacks_it(api, other):
    _, ret = await api.order_with_return(("L1", 1, "DEFECTIVE"), buyer_id="b-r4", seller_id="s-r4")
    rid = ret["return_id"]
    made = await other.client.post(
        f"/v1/returns/{rid}/offers",
        json={"amount": {"amount": 500, "currency": "USD"}, "note": "keep it"},
        headers=other.as_seller("s-r4"),
    )
    assert made.status_code == 201, made.text
    (offer,) = made.json()["offers"]
    # This process's copy has no such offer (an unknown offer there would be a 404): decided fresh.
    accepted = await api.client.post(
        f"/v1/returns/{rid}/offers/{offer['offer_id']}/accept", json={}, headers=api.as_buyer("b-r4")
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["offers"][0]["status"] == "accepted"
