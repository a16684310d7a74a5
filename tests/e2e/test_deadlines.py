"""Deadlines with the real durations (48 h to answer, 2 business days to refund), reached by moving the
clock of every service process forward (CLOCK_FILE); the deadline jobs then act on their own.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import holidays

from tests.e2e.expect import emails_settled, expect_emails, expect_events, expect_one_payment
from tests.e2e.harness import Stack, eventually, holds
from tests.e2e.world import NEW_YORK, World, dollars, long_day, ok, usd


async def test_seller_silent_for_48_hours_is_reminded_then_the_platform_authorizes(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    order = await world.deliver(world.order(buyer, seller, [("L1", "Desk lamp", "home", 1, 3499)], shipping=599))
    oid = order["order_id"]
    ret = ok(
        await buyer.request_return(oid, [{"line_id": "L1", "quantity": 1, "reason_code": "NOT_AS_DESCRIBED"}]), 201
    )
    rid = ret["return_id"]
    created = datetime.fromisoformat(ret["created_at"])
    due = datetime.fromisoformat(ret["response_due_at"])
    assert due - created == timedelta(hours=48)

    # 36 h later (12 h before the deadline) the seller is reminded, once.
    await emails_settled(world.agent, rid, 2)
    stack.move_clock_to(created + timedelta(hours=36, minutes=1))
    await eventually(
        lambda: stack.tap.of_return(rid)[-1:] and stack.tap.of_return(rid)[-1].type == "seller.response_due_soon",
        what="the reminder",
    )
    # 48 h: the seller never answered, so the platform authorizes (prepaid label at the seller's expense).
    await emails_settled(world.agent, rid, 3)
    stack.move_clock_to(created + timedelta(hours=48, minutes=1))

    async def authorized() -> dict | None:
        current = await buyer.get_return(rid)
        return current if current["status"] == "authorized" else None

    ret = await eventually(authorized, what=f"{rid} authorized by the platform")
    auth = ret["authorization"]
    assert (auth["automatic"], auth["late"], auth["label_type"], auth["return_shipping_paid_by"]) == (
        True,
        True,
        "prepaid",
        "seller",
    )
    assert ret["timeline"][-1]["actor"] == {"role": "platform", "id": "returns"}
    assert [t["action"] for t in ret["timeline"]] == ["request", "remind", "authorize"]
    authorized_at = datetime.fromisoformat(ret["authorized_at"])
    assert due < authorized_at < due + timedelta(minutes=2)

    # The seller's answer now comes too late to change anything.
    late = await seller.act(rid, "reject", {"reason_code": "OTHER", "note": "sorry, was away"})
    assert late.status_code == 409

    # The buyer ships with the platform's prepaid label; the refund follows receipt as usual: the
    # seller's fault and the whole order, so 34.99 + the 5.99 outbound shipping.
    ok(await buyer.act(rid, "ship", {"carrier": "UPS", "tracking_number": "1Z0000000000000048"}), 200)
    ok(await seller.act(rid, "receive", {"lines": [{"line_id": "L1", "quantity": 1, "condition": "sellable"}]}), 200)

    async def refunded() -> dict | None:
        current = await buyer.get_return(rid)
        return current if current["status"] == "refunded" else None

    ret = await eventually(refunded, what=f"{rid} refunded")
    [refund] = await seller.refunds_of_return(rid)
    assert (refund["amount"], refund["breakdown"]["outbound_shipping"], refund["automatic"]) == (
        usd(4098),
        usd(599),
        False,
    )
    expect_one_payment(stack, refund, order["payment"]["reference"])

    events = await expect_events(
        stack,
        rid,
        [
            ("return.created", 1),
            ("seller.response_due_soon", 2),
            ("return.authorized", 3),
            ("return.shipped", 4),
            ("return.received", 5),
            ("refund.issued", refund["version"]),
            ("return.refunded", refund["return_version"] + 1),
        ],
    )
    assert events[2].data["authorization"]["late"] is True
    assert events[2].body["source"] == "/services/returns"
    await expect_emails(
        stack,
        world.agent,
        rid,
        [
            (buyer.email, f"We received your return request for order {oid}"),
            (seller.email, f"New return request {rid}: respond by {long_day(due)}"),
            (seller.email, f"Reminder: return {rid} needs your answer by {long_day(due)}"),
            (buyer.email, f"Your return {rid} is authorized: ship by {long_day(ret['ship_by'])}"),
            (seller.email, f"We authorized return {rid} on your behalf"),
            (seller.email, f"Return {rid} is on its way to you"),
            (buyer.email, f"The seller received your return {rid}"),
            (seller.email, f"Return {rid} received: refund due by {long_day(ret['refund_due_at'])}"),
            (buyer.email, f"You have been refunded {dollars(4098)} for order {oid}"),
        ],
    )

    # The late response is in the seller's metrics: one valid request, answered late, dissatisfied.
    metrics = await seller.seller_metrics()
    counts = metrics["counts"]
    assert (
        counts["requests"],
        counts["authorizations"],
        counts["platform_authorizations"],
        counts["receipts"],
        counts["refunds"],
    ) == (1, 1, 1, 1, 1)
    assert metrics["valid_requests"] == 1
    assert metrics["late_response"] == {"count": 1, "of": 1, "rate": 1.0}
    assert metrics["dissatisfaction"]["count"] == 1 and metrics["dissatisfaction"]["meets_target"] is False
    assert metrics["refunded"] == [usd(4098)]
    response = metrics["response_time"]
    assert response["responded"] == 1
    assert 48 * 3600 < response["p50_seconds"] < 48 * 3600 + 120


def thursday_with_plain_week(after: datetime) -> date:
    """The first Thursday after `after` whose Thu, Fri, Mon and Tue are all US business days."""
    us = holidays.country_holidays("US", years=range(after.year, after.year + 2))
    day = after.astimezone(NEW_YORK).date() + timedelta(days=1)
    while True:
        if day.weekday() == 3 and not any(day + timedelta(days=n) in us for n in (0, 1, 4, 5)):
            return day
        day += timedelta(days=1)


async def test_manual_seller_who_never_refunds_is_auto_refunded_after_two_business_days(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    await seller.put_policy({"refund_mode": "manual"})
    # The item arrives back on a Thursday morning, New York time: the two business days are Friday and
    # Monday (the weekend doesn't count), so the refund is due by the end of Monday.
    thursday = thursday_with_plain_week(stack.now())
    monday = thursday + timedelta(days=4)
    stack.move_clock_to(datetime.combine(thursday, time(9, 30), tzinfo=NEW_YORK))
    order = await world.deliver(
        world.order(buyer, seller, [("L1", "Wool scarf", "apparel", 1, 3900)], shipping=500, days_ago=3)
    )
    oid = order["order_id"]
    ret = ok(await buyer.request_return(oid, [{"line_id": "L1", "quantity": 1, "reason_code": "DEFECTIVE"}]), 201)
    rid = ret["return_id"]
    assert ret["policy"]["refund_mode"] == "manual"
    ok(await seller.act(rid, "authorize", {}), 200)
    ok(await buyer.act(rid, "ship", {"carrier": "USPS", "tracking_number": "9400100000000000000077"}), 200)
    ret = ok(await seller.act(rid, "receive", {"lines": [{"line_id": "L1", "quantity": 1, "condition": "used"}]}), 200)
    received_local = datetime.fromisoformat(ret["received_at"]).astimezone(NEW_YORK)
    assert received_local.date() == thursday

    async def due_refund() -> dict | None:
        refunds = await seller.refunds_of_return(rid)
        return refunds[0] if refunds and refunds[0]["status"] == "due" else None

    refund = await eventually(due_refund, what="the refund waiting for the seller")
    for deadline in (refund["due_at"], ret["refund_due_at"]):  # refunds and returns agree on it
        local = datetime.fromisoformat(deadline).astimezone(NEW_YORK)
        assert (local.date(), local.hour, local.minute, local.second) == (monday, 23, 59, 59), local
    assert refund["amount"] == usd(4400)  # 3900 + the 5.00 outbound shipping (seller's fault, whole order)

    # Saturday noon: past two calendar days, but not two business days; nothing happens.
    await emails_settled(world.agent, rid, 6)
    stack.move_clock_to(datetime.combine(thursday + timedelta(days=2), time(12), tzinfo=NEW_YORK))

    async def still_due() -> bool:
        return (await seller.refunds_of_return(rid))[0]["status"] == "due"

    await holds(still_due, duration=2.0, what="the refund waiting over the weekend")
    # Tuesday, just past midnight: the seller let the deadline pass; the platform refunds.
    stack.move_clock_to(datetime.combine(monday + timedelta(days=1), time(0, 0, 30), tzinfo=NEW_YORK))

    async def auto_refunded() -> dict | None:
        refunds = await seller.refunds_of_return(rid)
        return refunds[0] if refunds[0]["status"] == "issued" else None

    refund = await eventually(auto_refunded, what="the platform's refund")
    assert refund["automatic"] is True and refund["actor"] == {"role": "platform", "id": "refunds"}
    assert refund["amount"] == usd(4400)
    b = refund["breakdown"]
    assert (b["items"], b["restocking_fee"], b["outbound_shipping"], b["total"]) == (
        usd(3900),
        usd(0),
        usd(500),
        usd(4400),
    )
    expect_one_payment(stack, refund, order["payment"]["reference"])

    async def refunded() -> dict | None:
        current = await buyer.get_return(rid)
        return current if current["status"] == "refunded" else None

    ret = await eventually(refunded, what=f"{rid} refunded")
    assert ret["refund"] == {"refund_id": refund["refund_id"], "amount": usd(4400), "automatic": True}

    await expect_events(
        stack,
        rid,
        [
            ("return.created", 1),
            ("return.authorized", 2),
            ("return.shipped", 3),
            ("return.received", 4),
            ("refund.issued", refund["version"]),
            ("return.refunded", refund["return_version"] + 1),
        ],
    )
    await expect_emails(
        stack,
        world.agent,
        rid,
        [
            (buyer.email, f"We received your return request for order {oid}"),
            (seller.email, f"New return request {rid}: respond by {long_day(ret['response_due_at'])}"),
            (buyer.email, f"Your return {rid} is authorized: ship by {long_day(ret['ship_by'])}"),
            (seller.email, f"Return {rid} is on its way to you"),
            (buyer.email, f"The seller received your return {rid}"),
            (seller.email, f"Return {rid} received: refund due by {long_day(monday.isoformat() + 'T12:00:00-05:00')}"),
            (buyer.email, f"You have been refunded {dollars(4400)} for order {oid}"),
            (seller.email, f"We refunded the buyer {dollars(4400)} on your behalf (order {oid})"),
        ],
    )

    metrics = await seller.seller_metrics()
    assert metrics["auto_refunds"] == {"count": 1, "amounts": [usd(4400)]}
    assert metrics["refund_timeliness"] == {"count": 0, "of": 1, "rate": 0.0}  # refunded after the deadline
    assert metrics["refunded"] == [usd(4400)]
