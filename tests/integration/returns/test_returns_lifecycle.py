"""Each path of the lifecycle through HTTP and the broker: exactly the expected events, with the return."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.events import new_event
from shared.models import BuyerFlag, Order, Refund, Return
from tests.integration.returns.conftest import T0
from tests.integration.returns.factories import eventually, order_data, refund_data, unique
from tests.integration.returns.tap import EventTap

pytestmark = pytest.mark.integration


def parties() -> dict[str, str]:
    return {"buyer_id": unique("b"), "seller_id": unique("s")}


async def announce(
    upstream, event_type: str, data, subject: str, *, exchange: str | None = None, sequence: int = 1
) -> None:
    await upstream.publish(
        new_event(event_type, service="test-upstream", subject=subject, data=data, sequence=sequence, time=T0),
        exchange=exchange,
    )


def returns_of(events) -> list[Return]:
    return [Return.model_validate(e.data) for e in events]


async def test_order_delivered_feeds_the_read_model_and_replays_change_nothing(api, upstream, returns_settings):
    order = Order.model_validate(order_data(**parties()))
    event = new_event("order.delivered", service="orders", subject=order.order_id, data=order, sequence=1, time=T0)
    for _ in range(2):  # the same event twice, as at-least-once delivery allows
        await upstream.publish(event, exchange=returns_settings.orders_exchange)

    async def stored():
        response = await api.client.get(f"/v1/orders/{order.order_id}", headers=api.as_buyer(order.buyer.id))
        return response.status_code == 200 and response.json()

    assert (await eventually(stored, what="order snapshot"))["lines"][0]["unit_price"]["amount"] == 1500
    # The same snapshot over HTTP is an update, not a second order.
    response = await api.client.put(
        f"/v1/orders/{order.order_id}", json=order.model_dump(mode="json"), headers=api.as_service()
    )
    assert response.status_code == 200
    other = await api.client.get(f"/v1/orders/{order.order_id}", headers=api.as_buyer("someone-else"))
    assert other.status_code == 404


async def test_return_authorized_shipped_received_refunded_with_feedback(api, tap, upstream):
    who = parties()
    _order, ret = await api.order_with_return(("L1", 2, "DEFECTIVE"), **who)
    rid, seller, buyer = ret["return_id"], who["seller_id"], who["buyer_id"]
    assert ret["status"] == "requested" and ret["fault"] == "seller" and ret["lines"][0]["unit_price"]["amount"] == 1500
    await api.authorize(
        rid, seller=seller, carrier="UPS", tracking_number="1ZRET", label_url="https://labels.example/1"
    )
    await api.ship(rid, buyer=buyer, carrier="UPS", tracking_number="1ZRET")
    received = await api.receive(rid, [("L1", 2, "sellable")], seller=seller)
    assert received["refund_due_at"] > received["received_at"]

    events = await tap.wait_types(rid, ["return.created", "return.authorized", "return.shipped", "return.received"])
    assert [e.sequence for e in events] == [1, 2, 3, 4]
    created, authorized, shipped, got = returns_of(events)
    assert (created.status, created.version, created.buyer.id, created.seller.id) == ("requested", 1, buyer, seller)
    assert (
        authorized.authorization.label_type == "prepaid"
        and authorized.authorization.return_shipping_paid_by == "seller"
    )
    assert authorized.ship_by == authorized.authorized_at + timedelta(days=30)
    assert shipped.shipment.tracking_number == "1ZRET"
    assert got.receipt.lines[0].condition == "sellable" and got.refund_due_at is not None
    assert events[-1].data == received  # the event carries the return exactly as the API answers it

    refund = Refund.model_validate(refund_data(ret, amount=3000))
    await announce(upstream, "return.refunded", refund, rid)
    refunded = await eventually(lambda: _status(api, rid, "refunded"), what="refunded")
    assert refunded["refund"]["amount"]["amount"] == 3000 and refunded["refund"]["refund_id"] == refund.refund_id
    await api.feedback(rid, False, buyer=buyer)
    events = await tap.wait_types(
        rid, ["return.created", "return.authorized", "return.shipped", "return.received", "return.feedback_received"]
    )
    last = Return.model_validate(events[-1].data)
    assert last.status == "refunded" and last.feedback.resolved is False and events[-1].sequence == last.version == 6
    assert [t.action for t in last.timeline] == ["request", "authorize", "ship", "receive", "refund", "feedback"]


async def test_the_received_return_carries_the_restocking_fee_of_each_line(api, tap):
    # The fee is decided here, at receipt; the refunds service applies these percents as they are.
    who = parties()
    await api.put_policy(who["seller_id"], restocking_fee_percent="15")
    _, ret = await api.order_with_return(("L1", 2, "NO_LONGER_NEEDED"), ("L2", 1, "DEFECTIVE"), **who)
    rid = ret["return_id"]
    assert ret["policy"]["restocking_fee_percent"] == "15"
    await api.authorize(rid, seller=who["seller_id"], return_shipping_paid_by="seller")
    received = await api.receive(rid, [("L1", 2, "opened"), ("L2", 1, "used")], seller=who["seller_id"])
    assert [(r["line_id"], r["restocking_fee_percent"]) for r in received["receipt"]["lines"]] == [
        ("L1", "15"),
        ("L2", "0"),
    ]  # L2 is the seller's fault: no fee, whatever its condition
    events = await tap.wait_types(rid, ["return.created", "return.authorized", "return.received"])
    assert [(r.line_id, r.restocking_fee_percent) for r in Return.model_validate(events[-1].data).receipt.lines] == [
        ("L1", 15),
        ("L2", 0),
    ]
    assert (await api.get_return(rid, api.as_seller(who["seller_id"])))["receipt"] == received["receipt"]


async def _status(api, return_id: str, status: str):
    ret = await api.get_return(return_id)
    return ret if ret["status"] == status else None


async def test_reject_of_a_seller_fault_request_counts_as_invalid(api, tap):
    who = parties()
    _, ret = await api.order_with_return(("L2", 1, "NOT_AS_DESCRIBED"), **who)
    await api.reject(ret["return_id"], seller=who["seller_id"], reason_code="SUSPECTED_ABUSE")
    events = await tap.wait_types(ret["return_id"], ["return.created", "return.rejected"])
    rejected = Return.model_validate(events[-1].data)
    assert rejected.rejection.invalid and rejected.rejection.reason_code == "SUSPECTED_ABUSE"
    assert rejected.timeline[-1].actor.id == who["seller_id"]


async def test_buyer_withdraws_after_authorization(api, tap):
    who = parties()
    _, ret = await api.order_with_return(("L1", 1, "NO_LONGER_NEEDED"), **who)
    authorized = await api.authorize(ret["return_id"], seller=who["seller_id"])
    assert authorized["authorization"]["return_shipping_paid_by"] == "buyer"
    assert authorized["authorization"]["label_type"] == "unpaid"
    await api.close(ret["return_id"], buyer=who["buyer_id"], code="BUYER_WITHDREW")
    events = await tap.wait_types(ret["return_id"], ["return.created", "return.authorized", "return.closed"])
    assert Return.model_validate(events[-1].data).closure.code == "BUYER_WITHDREW"


async def test_returnless_refund_under_the_sellers_threshold(api, tap, upstream):
    who = parties()
    await api.put_policy(who["seller_id"], returnless_threshold={"amount": 2000, "currency": "USD"})
    _, ret = await api.order_with_return(("L1", 1, "NO_LONGER_NEEDED"), **who)
    assert ret["status"] == "authorized" and ret["authorization"]["returnless"] is True
    events = await tap.wait_types(ret["return_id"], ["return.created", "return.authorized"])
    assert [e.sequence for e in events] == [1, 2]
    await announce(upstream, "return.refunded", Refund.model_validate(refund_data(ret)), ret["return_id"])
    await eventually(lambda: _status(api, ret["return_id"], "refunded"), what="refunded")
    response = await api.client.post(
        f"/v1/returns/{ret['return_id']}/ship",
        headers=api.as_buyer(who["buyer_id"]),
        json={"carrier": "UPS", "tracking_number": "1"},
    )
    assert response.status_code == 409


async def test_auto_authorization_except_for_flagged_buyers(api, tap, upstream, returns_app):
    who = parties()
    await api.put_policy(who["seller_id"], auto_authorize=True)
    _, auto = await api.order_with_return(("L1", 1, "DEFECTIVE"), **who)
    assert auto["status"] == "authorized" and auto["authorization"]["automatic"] and not auto["authorization"]["late"]
    await tap.wait_types(auto["return_id"], ["return.created", "return.authorized"])

    store = returns_app.state.lifecycle.store
    flag = BuyerFlag(
        buyer_id=who["buyer_id"],
        flagged=True,
        returns_90d=6,
        orders_90d=7,
        return_rate_90d=0.86,
        reason="returns_90d",
        at=T0,
    )
    await announce(upstream, "buyer.flagged", flag, who["buyer_id"])
    await eventually(lambda: store.buyer_flagged(who["buyer_id"]), what="buyer flagged")
    _, held = await api.order_with_return(("L1", 1, "DEFECTIVE"), **who)
    assert held["status"] == "requested"

    unflag = flag.model_copy(update={"flagged": False, "at": T0 + timedelta(hours=1)})
    await announce(upstream, "buyer.unflagged", unflag, who["buyer_id"], sequence=2)
    await eventually(lambda: _not(store.buyer_flagged(who["buyer_id"])), what="buyer unflagged")
    # The first decision delivered again (same sequence, say a replay) arrives late: changes nothing.
    await announce(upstream, "buyer.flagged", flag, who["buyer_id"], sequence=1)
    _, again = await api.order_with_return(("L1", 1, "DEFECTIVE"), **who)
    assert again["status"] == "authorized"


async def _not(awaitable) -> bool:
    return not await awaitable


async def test_refund_failures_are_recorded_on_the_return(api, upstream):
    who = parties()
    _, ret = await api.order_with_return(("L1", 1, "DEFECTIVE"), **who)
    rid = ret["return_id"]
    await api.authorize(rid, seller=who["seller_id"])
    await api.receive(rid, [("L1", 1, "opened")], seller=who["seller_id"])
    failed = Refund.model_validate(refund_data(ret, status="failed", failure_reason="card_declined"))
    for _ in range(2):
        await announce(upstream, "refund.failed", failed, failed.refund_id)
    noted = await eventually(lambda: _failures(api, rid), what="refund failure noted")
    assert noted["status"] == "received" and len(noted["refund_failures"]) == 1
    assert "card_declined" in noted["refund_failures"][0]


async def _failures(api, rid):
    ret = await api.get_return(rid)
    return ret if ret["refund_failures"] else None


async def test_seller_policy_default_update_and_minimums(api):
    seller = unique("s")
    response = await api.client.get(f"/v1/sellers/{seller}/return-policy", headers=api.as_buyer("b-1"))
    assert response.status_code == 200
    assert (
        response.json().items()
        >= {"is_default": True, "return_window_days": 30, "refund_mode": "auto", "auto_authorize": False}.items()
    )
    updated = await api.put_policy(seller, return_window_days=45, restocking_fee_percent="15", refund_mode="manual")
    assert updated["version"] == 1 and updated["return_window_days"] == 45 and not updated["is_default"]
    for body, field in (
        ({"return_window_days": 14}, "return_window_days"),
        ({"restocking_fee_percent": 60}, "restocking_fee_percent"),
        ({"refund_mode": "sometimes"}, "refund_mode"),
    ):
        bad = await api.client.put(f"/v1/sellers/{seller}/return-policy", json=body, headers=api.as_seller(seller))
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in bad.json()["errors"]] == [field]
    other = await api.client.put(f"/v1/sellers/{seller}/return-policy", json={}, headers=api.as_seller("s-other"))
    assert other.status_code == 403
    kept = await api.client.get(f"/v1/sellers/{seller}/return-policy", headers=api.as_seller(seller))
    assert kept.json()["return_window_days"] == 45 and kept.json()["version"] == 1


async def test_an_order_put_over_http_is_announced_once_on_the_orders_exchange(api, returns_settings):
    """Refunds and metrics learn orders only from `order.delivered`; one that came over HTTP must reach them too."""
    orders_tap = EventTap(returns_settings.amqp_url, returns_settings.orders_exchange)
    await orders_tap.start()
    try:
        order = order_data(**parties())
        await api.put_order(order)
        await api.put_order(order)  # the same snapshot again: stored once, announced once
        changed = order | {"shipping_paid": {"amount": 999, "currency": "USD"}}
        await api.put_order(changed)
        announced = await orders_tap.wait_types(order["order_id"], ["order.delivered", "order.delivered"])
        assert [e.sequence for e in announced] == [1, 2]
        assert [e.data["shipping_paid"]["amount"] for e in announced] == [order["shipping_paid"]["amount"], 999]
    finally:
        await orders_tap.close()
