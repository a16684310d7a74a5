"""A return's whole life through the public interfaces: the money, the states, the events, the emails.

Amounts are worked out by hand from the order each test creates (docs/product.md §6).
"""

from __future__ import annotations

from tests.e2e.expect import assert_no_personal_data_in_logs, expect_emails, expect_events, expect_one_payment
from tests.e2e.harness import Stack, eventually
from tests.e2e.world import Party, World, dollars, long_day, ok, total_paid, usd


async def refunded(party: Party, return_id: str) -> dict:
    async def done() -> dict | None:
        ret = await party.get_return(return_id)
        return ret if ret["status"] == "refunded" else None

    return await eventually(done, what=f"{return_id} refunded")


async def test_buyer_remorse_with_unpaid_label_is_refunded_without_the_postage(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    await seller.put_policy({"restocking_fee_percent": "15", "refund_mode": "auto"})
    order = await world.deliver(
        world.order(
            buyer,
            seller,
            [("L1", "Espresso grinder", "kitchen", 1, 2999), ("L2", "Paper filters", "kitchen", 2, 450)],
            shipping=599,
        )
    )
    oid = order["order_id"]

    ret = ok(
        await buyer.request_return(
            oid,
            [{"line_id": "L1", "quantity": 1, "reason_code": "NO_LONGER_NEEDED", "comment": "Found one I like better"}],
            key="remorse-1",
        ),
        201,
    )
    rid = ret["return_id"]
    assert (ret["status"], ret["fault"], ret["in_policy"], ret["whole_order"]) == ("requested", "buyer", True, False)
    # The same request again (a retry after a timeout) is the same return.
    again = ok(
        await buyer.request_return(
            oid,
            [{"line_id": "L1", "quantity": 1, "reason_code": "NO_LONGER_NEEDED", "comment": "Found one I like better"}],
            key="remorse-1",
        ),
        201,
    )
    assert again["return_id"] == rid

    # Buyer's fault, seller in the marketplace's country: the buyer pays postage on an unpaid label.
    ret = ok(await seller.act(rid, "authorize", {"label_type": "unpaid", "return_postage": usd(750)}), 200)
    auth = ret["authorization"]
    assert (ret["status"], auth["label_type"], auth["return_shipping_paid_by"]) == ("authorized", "unpaid", "buyer")
    assert auth["return_postage"] == usd(750) and not auth["automatic"] and not auth["late"]
    ok(await buyer.act(rid, "ship", {"carrier": "USPS", "tracking_number": "9400111899560000000001"}), 200)
    ret = ok(
        await seller.act(rid, "receive", {"lines": [{"line_id": "L1", "quantity": 1, "condition": "opened"}]}), 200
    )
    assert ret["status"] == "received"

    ret = await refunded(buyer, rid)
    # 2999 − 15 % restocking fee (449.85 → 450, the buyer's fault and the item opened) = 2549.
    # The 7.50 the buyer paid for postage is theirs to bear: no return-shipping concession.
    [refund] = await seller.refunds_of_return(rid)
    assert refund["amount"] == usd(2549) and refund["status"] == "issued" and refund["kind"] == "return"
    b = refund["breakdown"]
    assert (
        b["items"],
        b["restocking_fee"],
        b["outbound_shipping"],
        b["return_shipping_concession"],
        b["other_concession"],
        b["total"],
    ) == (usd(2999), usd(450), usd(0), usd(0), usd(0), usd(2549))
    assert refund["automatic"] is False and refund["actor"] == {"role": "platform", "id": "refunds"}
    assert ret["refund"] == {"refund_id": refund["refund_id"], "amount": usd(2549), "automatic": False}
    expect_one_payment(stack, refund, order["payment"]["reference"])

    assert [(t["status"], t["action"], t["actor"]["role"]) for t in ret["timeline"]] == [
        ("requested", "request", "buyer"),
        ("authorized", "authorize", "seller"),
        ("shipped", "ship", "buyer"),
        ("received", "receive", "seller"),
        ("refunded", "refund", "platform"),
    ]

    events = await expect_events(
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
    assert [e.subject for e in events][-2:] == [refund["refund_id"], rid]
    assert [e.data["status"] for e in events] == ["requested", "authorized", "shipped", "received", "issued", "issued"]

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
            (seller.email, f"Return {rid} received: refund due by {long_day(ret['refund_due_at'])}"),
            (buyer.email, f"You have been refunded {dollars(2549)} for order {oid}"),
        ],
    )

    metrics = await seller.seller_metrics()
    counts = metrics["counts"]
    assert (
        counts["requests"],
        counts["authorizations"],
        counts["shipments"],
        counts["receipts"],
        counts["refunds"],
        counts["rejections"],
    ) == (1, 1, 1, 1, 1, 0)
    assert metrics["refunded"] == [usd(2549)]
    assert metrics["late_response"] == {"count": 0, "of": 1, "rate": 0.0}
    assert metrics["refund_timeliness"] == {"count": 1, "of": 1, "rate": 1.0}
    assert [(r["reason_code"], r["fault"], r["returns"], r["units"]) for r in metrics["top_reasons"]] == [
        ("NO_LONGER_NEEDED", "buyer", 1, 1)
    ]
    assert {
        r["sku"].rsplit("-", 1)[-1]: (r["units_delivered"], r["units_returned"]) for r in metrics["sku_return_rates"]
    } == {"L1": (1, 1), "L2": (2, 0)}

    # Each party sees only their own: another buyer or seller gets a 404, not a 403.
    stranger = world.buyer()
    assert (await stranger.call("returns", "GET", f"/v1/returns/{rid}")).status_code == 404
    assert (await world.seller().call("returns", "GET", f"/v1/returns/{rid}")).status_code == 404
    assert (await stranger.call("refunds", "GET", f"/v1/refunds/{refund['refund_id']}")).status_code == 404
    assert total_paid(order) - refund["amount"]["amount"] == 1949
    assert_no_personal_data_in_logs(stack, buyer)


async def test_damaged_item_with_prepaid_label_is_refunded_in_full_with_outbound_shipping(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()  # the seller keeps the marketplace's default policy
    order = await world.deliver(
        world.order(buyer, seller, [("L1", "Ceramic vase", "home_decor", 1, 4999)], shipping=699)
    )
    oid = order["order_id"]
    ret = ok(
        await buyer.request_return(
            oid, [{"line_id": "L1", "quantity": 1, "reason_code": "DAMAGED_ON_ARRIVAL", "comment": "Arrived in pieces"}]
        ),
        201,
    )
    rid = ret["return_id"]
    assert (ret["fault"], ret["whole_order"], ret["policy"]["refund_mode"]) == ("seller", True, "auto")

    # A buyer may not authorize their own return; a seller may not ship it.
    assert (await buyer.act(rid, "authorize", {})).status_code == 403
    ret = ok(
        await seller.act(
            rid,
            "authorize",
            {
                "label_type": "prepaid",
                "carrier": "UPS",
                "tracking_number": "1Z999AA10123456784",
                "label_url": "https://labels.example/1Z999AA10123456784.pdf",
            },
        ),
        200,
    )
    auth = ret["authorization"]
    assert (auth["label_type"], auth["return_shipping_paid_by"], auth["return_postage"]) == ("prepaid", "seller", None)
    assert (await seller.act(rid, "ship", {"carrier": "UPS", "tracking_number": "x"})).status_code == 403
    ok(await buyer.act(rid, "ship", {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}), 200)
    ok(
        await seller.act(
            rid, "receive", {"lines": [{"line_id": "L1", "quantity": 1, "condition": "damaged_in_transit"}]}
        ),
        200,
    )
    # Receiving twice is an illegal transition: 409, nothing changes.
    again = await seller.act(rid, "receive", {"lines": [{"line_id": "L1", "quantity": 1, "condition": "sellable"}]})
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")

    ret = await refunded(buyer, rid)
    # The seller's fault and the whole order came back: 4999 + the 6.99 outbound shipping = all the buyer paid.
    [refund] = await buyer.refunds_of_return(rid)
    b = refund["breakdown"]
    assert (b["items"], b["restocking_fee"], b["outbound_shipping"], b["return_shipping_concession"], b["total"]) == (
        usd(4999),
        usd(0),
        usd(699),
        usd(0),
        usd(5698),
    )
    assert refund["amount"]["amount"] == total_paid(order) == 5698
    expect_one_payment(stack, refund, order["payment"]["reference"])

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
            (seller.email, f"Return {rid} received: refund due by {long_day(ret['refund_due_at'])}"),
            (buyer.email, f"You have been refunded {dollars(5698)} for order {oid}"),
        ],
    )
    metrics = await seller.seller_metrics()
    assert metrics["refunded"] == [usd(5698)] and metrics["counts"]["refunds"] == 1
    assert [(r["reason_code"], r["fault"]) for r in metrics["top_reasons"]] == [("DAMAGED_ON_ARRIVAL", "seller")]


async def test_returnless_refund_under_the_sellers_threshold(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    await seller.put_policy({"returnless_threshold": usd(1000)})
    order = await world.deliver(
        world.order(
            buyer,
            seller,
            [("L1", "Phone case", "accessories", 1, 899), ("L2", "Charger", "electronics", 1, 2499)],
            shipping=499,
        )
    )
    oid = order["order_id"]

    ret = ok(
        await buyer.request_return(oid, [{"line_id": "L1", "quantity": 1, "reason_code": "NO_LONGER_NEEDED"}]), 201
    )
    rid = ret["return_id"]
    # Every line at or under 10.00: authorized at once, without the item coming back.
    auth = ret["authorization"]
    assert ret["status"] == "authorized" and ret["version"] == 2
    assert (auth["returnless"], auth["automatic"], auth["late"], auth["label_type"]) == (True, True, False, None)
    assert ret["timeline"][-1]["actor"] == {"role": "platform", "id": "returns"}

    ret = await refunded(buyer, rid)
    [refund] = await buyer.refunds_of_return(rid)
    assert (refund["kind"], refund["amount"], refund["breakdown"]["outbound_shipping"]) == (
        "returnless",
        usd(899),
        usd(0),
    )
    expect_one_payment(stack, refund, order["payment"]["reference"])
    # Nothing to ship or receive.
    assert (await buyer.act(rid, "ship", {"carrier": "USPS", "tracking_number": "1"})).status_code == 409

    await expect_events(
        stack,
        rid,
        [
            ("return.created", 1),
            ("return.authorized", 2),
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
            (seller.email, f"Return {rid} was authorized by your auto-authorization setting"),
            (buyer.email, f"Keep the item: your refund for order {oid} is on its way"),
            (buyer.email, f"You have been refunded {dollars(899)} for order {oid}"),
        ],
    )
    metrics = await seller.seller_metrics()
    assert (
        metrics["counts"]["requests"],
        metrics["counts"]["authorizations"],
        metrics["counts"]["receipts"],
        metrics["counts"]["refunds"],
    ) == (1, 1, 0, 1)
    assert metrics["refunded"] == [usd(899)]


async def test_out_of_window_request_is_refused_and_an_exception_rejected(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    order = await world.deliver(
        world.order(buyer, seller, [("L1", "Rain jacket", "apparel", 1, 6500)], shipping=0, days_ago=45)
    )
    oid = order["order_id"]

    refused = await buyer.request_return(oid, [{"line_id": "L1", "quantity": 1, "reason_code": "NO_LONGER_NEEDED"}])
    assert refused.status_code == 422
    problem = refused.json()
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert problem["errors"] == [
        {
            "field": "lines[0].line_id",
            "location": "body",
            "reason": "the 30-day return window closed (45 days since delivery)",
        }
    ]
    # Only agents may open a request outside the policy.
    forbidden = await buyer.request_return(
        oid, [{"line_id": "L1", "quantity": 1, "reason_code": "NO_LONGER_NEEDED"}], policy_exception=True
    )
    assert forbidden.status_code == 403

    # Support opens it as an exception; the seller declines it as outside the window.
    ret = ok(
        await world.agent.request_return(
            oid, [{"line_id": "L1", "quantity": 1, "reason_code": "NO_LONGER_NEEDED"}], policy_exception=True
        ),
        201,
    )
    rid = ret["return_id"]
    assert (ret["status"], ret["in_policy"]) == ("requested", False)
    ret = ok(
        await seller.act(rid, "reject", {"reason_code": "OUTSIDE_RETURN_WINDOW", "note": "Delivered 45 days ago"}), 200
    )
    assert ret["status"] == "rejected"
    assert ret["rejection"] == {
        "reason_code": "OUTSIDE_RETURN_WINDOW",
        "note": "Delivered 45 days ago",
        "invalid": False,
    }
    assert (await buyer.act(rid, "ship", {"carrier": "USPS", "tracking_number": "1"})).status_code == 409

    await expect_events(stack, rid, [("return.created", 1), ("return.rejected", 2)])
    await expect_emails(
        stack,
        world.agent,
        rid,
        [
            (buyer.email, f"We received your return request for order {oid}"),
            (seller.email, f"New return request {rid}: respond by {long_day(ret['response_due_at'])}"),
            (buyer.email, f"Your return request {rid} was declined"),
        ],
    )
    # The refused request left no trace: one return for the order, and no refund.
    returns = ok(await buyer.call("returns", "GET", "/v1/returns", params={"order_id": oid}), 200)["items"]
    assert [r["return_id"] for r in returns] == [rid]
    assert await seller.refunds_of_return(rid) == []
    metrics = await seller.seller_metrics()
    assert (metrics["counts"]["requests"], metrics["counts"]["rejections"], metrics["valid_requests"]) == (1, 1, 0)
    assert metrics["invalid_rejection"] == {"count": 0, "of": 0, "rate": None}
    assert stack.stripe.refunds() == [c for c in stack.stripe.refunds() if c.params.get("metadata[order_id]") != oid]


async def test_partial_return_of_one_line_then_the_rest(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    order = await world.deliver(
        world.order(
            buyer,
            seller,
            [
                ("L1", "Trail shoes", "shoes", 1, 7999),
                ("L2", "Wool socks", "apparel", 2, 1299),
                ("L3", "Insoles", "shoes", 1, 1999),
            ],
            shipping=899,
        )
    )
    oid = order["order_id"]
    assert total_paid(order) == 13495

    async def full_life(lines: list[dict], received: list[dict]) -> tuple[dict, dict]:
        ret = ok(await buyer.request_return(oid, lines), 201)
        rid = ret["return_id"]
        ok(await seller.act(rid, "authorize", {}), 200)  # seller's fault: a prepaid label by default
        ok(await buyer.act(rid, "ship", {"carrier": "FedEx", "tracking_number": f"7777{rid[-8:]}"}), 200)
        ok(await seller.act(rid, "receive", {"lines": received}), 200)
        ret = await refunded(buyer, rid)
        [refund] = await buyer.refunds_of_return(rid)
        expect_one_payment(stack, refund, order["payment"]["reference"])
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
                (seller.email, f"Return {rid} received: refund due by {long_day(ret['refund_due_at'])}"),
                (buyer.email, f"You have been refunded {dollars(refund['amount']['amount'])} for order {oid}"),
            ],
        )
        return ret, refund

    # 1) One line of three: the shoes, wrong size sent. Not the whole order: no outbound shipping.
    first, first_refund = await full_life(
        [{"line_id": "L1", "quantity": 1, "reason_code": "WRONG_SIZE_OR_COLOR_SENT"}],
        [{"line_id": "L1", "quantity": 1, "condition": "sellable"}],
    )
    assert (first["whole_order"], first["authorization"]["label_type"]) == (False, "prepaid")
    assert first_refund["amount"] == usd(7999) and first_refund["breakdown"]["outbound_shipping"] == usd(0)

    # 2) The rest: with the first return, every unit comes back, so the outbound shipping is refunded too.
    second, second_refund = await full_life(
        [
            {"line_id": "L2", "quantity": 2, "reason_code": "DEFECTIVE"},
            {"line_id": "L3", "quantity": 1, "reason_code": "MISSING_PARTS"},
        ],
        [
            {"line_id": "L2", "quantity": 2, "condition": "sellable"},
            {"line_id": "L3", "quantity": 1, "condition": "opened"},
        ],
    )
    assert second["whole_order"] is True
    b = second_refund["breakdown"]
    assert (b["items"], b["restocking_fee"], b["outbound_shipping"], b["total"]) == (
        usd(2 * 1299 + 1999),
        usd(0),
        usd(899),
        usd(5496),
    )
    # Together exactly what the buyer paid, never more.
    assert first_refund["amount"]["amount"] + second_refund["amount"]["amount"] == total_paid(order)

    # Nothing is left to return.
    more = await buyer.request_return(oid, [{"line_id": "L2", "quantity": 1, "reason_code": "DEFECTIVE"}])
    assert more.status_code == 422
    assert more.json()["errors"] == [
        {"field": "lines[0].quantity", "location": "body", "reason": "only 0 of 2 units can still be returned"}
    ]
    metrics = await seller.seller_metrics()
    assert metrics["refunded"] == [usd(13495)] and metrics["counts"]["refunds"] == 2
    assert {
        r["sku"].rsplit("-", 1)[-1]: (r["units_delivered"], r["units_returned"]) for r in metrics["sku_return_rates"]
    } == {"L1": (1, 1), "L2": (2, 2), "L3": (1, 1)}
