"""Repeated returns flag a buyer (metrics → `buyer.flagged` → returns), which turns off the seller's
automatic decisions for them: no more auto-authorization or refund without return."""

from __future__ import annotations

from tests.e2e.expect import expect_emails, expect_events
from tests.e2e.harness import Stack, eventually
from tests.e2e.world import World, dollars, long_day, ok, usd


async def test_buyer_flagged_after_repeated_returns(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    await seller.put_policy({"auto_authorize": True, "returnless_threshold": usd(2500)})
    orders = [
        world.order(buyer, seller, [("L1", f"Bath towel #{n}", "home", 1, 1999)], shipping=399) for n in range(1, 7)
    ]
    for order in orders:
        await world.deliver(order)

    async def six_orders_known() -> bool:
        return (await buyer.buyer_metrics())["orders"] == 6

    await eventually(six_orders_known, what="metrics counting the buyer's 6 orders")

    # Three returns of six orders: the third makes the return rate 50 % over 6 orders (rule: >= 50 %
    # over >= 4 orders in 90 days). Until then each is a refund without return, decided at once.
    returned = []
    for order in orders[:3]:
        ret = ok(
            await buyer.request_return(
                order["order_id"], [{"line_id": "L1", "quantity": 1, "reason_code": "ORDERED_BY_MISTAKE"}]
            ),
            201,
        )
        assert ret["status"] == "authorized" and ret["authorization"]["returnless"] is True
        returned.append(ret)

    flagged = await eventually(
        lambda: [e for e in stack.tap.of_type("buyer.flagged") if e.subject == buyer.id],
        what=f"buyer.flagged for {buyer.id}",
    )
    assert len(flagged) == 1
    data = flagged[0].data
    assert (data["buyer_id"], data["flagged"], data["returns_90d"], data["orders_90d"], data["return_rate_90d"]) == (
        buyer.id,
        True,
        3,
        6,
        0.5,
    )
    assert data["reason"] == "return rate 50% over 6 orders in 90 days (limit 50% over 4)"
    assert flagged[0].body["source"] == "/services/metrics"
    standing = await buyer.buyer_metrics()
    assert (standing["returns"], standing["orders"], standing["returned_orders"], standing["return_rate"]) == (
        3,
        6,
        3,
        0.5,
    )
    assert standing["flag"]["flagged"] is True

    # Let the returns service take in the flag: an order for someone else published after it goes
    # through the same queue, so once that order is there the flag is too.
    await world.deliver(world.order(world.buyer(), seller, [("L1", "Barrier", "home", 1, 100)], shipping=0))

    # The fourth request waits for the seller, although it is under both of the seller's thresholds.
    fourth = ok(
        await buyer.request_return(
            orders[3]["order_id"], [{"line_id": "L1", "quantity": 1, "reason_code": "ORDERED_BY_MISTAKE"}]
        ),
        201,
    )
    rid = fourth["return_id"]
    assert (fourth["status"], fourth["authorization"], fourth["version"]) == ("requested", None, 1)
    ret = ok(await seller.act(rid, "reject", {"reason_code": "SUSPECTED_ABUSE"}), 200)
    assert ret["rejection"]["invalid"] is False  # the buyer's own reason: not held against the seller

    for earlier in returned:

        async def issued(return_id: str = earlier["return_id"]) -> dict | None:
            refunds = await seller.refunds_of_return(return_id)
            return refunds[0] if refunds and refunds[0]["status"] == "issued" else None

        refund = await eventually(issued, what=f"the refund of {earlier['return_id']}")
        assert (refund["kind"], refund["amount"]) == ("returnless", usd(1999))
        await expect_events(
            stack,
            earlier["return_id"],
            [
                ("return.created", 1),
                ("return.authorized", 2),
                ("refund.issued", refund["version"]),
                ("return.refunded", refund["return_version"] + 1),
            ],
        )
        oid = earlier["order_id"]
        await expect_emails(
            stack,
            world.agent,
            earlier["return_id"],
            [
                (buyer.email, f"We received your return request for order {oid}"),
                (
                    seller.email,
                    (f"New return request {earlier['return_id']}: respond by {long_day(earlier['response_due_at'])}"),
                ),
                (seller.email, f"Return {earlier['return_id']} was authorized by your auto-authorization setting"),
                (buyer.email, f"Keep the item: your refund for order {oid} is on its way"),
                (buyer.email, f"You have been refunded {dollars(1999)} for order {oid}"),
            ],
        )
    await expect_events(stack, rid, [("return.created", 1), ("return.rejected", 2)])
    await expect_emails(
        stack,
        world.agent,
        rid,
        [
            (buyer.email, f"We received your return request for order {orders[3]['order_id']}"),
            (seller.email, f"New return request {rid}: respond by {long_day(ret['response_due_at'])}"),
            (buyer.email, f"Your return request {rid} was declined"),
        ],
    )
    # Flagged once: no second flag event however many more returns there are.
    assert len([e for e in stack.tap.of_type("buyer.flagged") if e.subject == buyer.id]) == 1
