"""Disputes end to end, through public interfaces only: A-to-z claims with their 72-hour deadline,
an agent's decision, a chargeback answered by the platform, and a seller's order defect rate.

Deadlines keep their real lengths and are reached by moving every service's clock (CLOCK_FILE).
Stripe is stripe-mock behind the harness's recording proxy; its webhooks are signed here the way
Stripe signs them.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta

from tests.e2e.disputes_world import (
    claim_act,
    claim_in,
    dispute_event,
    file_claim,
    post_webhook,
    sign,
)
from tests.e2e.harness import Stack, eventually
from tests.e2e.world import Party, World, ok, total_paid, usd


def claim_emails(stack: Stack, subject: str) -> list[tuple[str, str]]:
    """(recipient, event type) of every email sent about the claim or chargeback `subject`."""
    events = {e.id: e.type for e in stack.tap.events if e.subject == subject}
    sent = {
        e.data["notification_id"]: events[e.data["event_id"]]
        for e in stack.tap.of_type("notification.sent")
        if e.data["event_id"] in events
    }
    return sorted(
        (mail.recipient, sent[mail.notification_id]) for mail in stack.mailbox.all() if mail.notification_id in sent
    )


async def expect_claim_emails(stack: Stack, subject: str, expected: list[tuple[str, str]]) -> None:
    want = sorted(expected)

    def arrived() -> bool:
        assert claim_emails(stack, subject) == want, f"emails of {subject}: {claim_emails(stack, subject)} != {want}"
        return True

    await eventually(arrived, what=f"the emails of {subject}")


def types_of(stack: Stack, subject: str) -> list[str]:
    return [e.type for e in stack.tap.events if e.subject == subject]


async def file_when_known(buyer: Party, order_id: str, reason: str, amount: int, **extra: object) -> dict:
    """File as soon as the disputes service has taken in the order (its read-model is event-fed)."""

    async def filed() -> dict | None:
        answer = await file_claim(buyer, order_id, reason, amount, **extra)  # type: ignore[arg-type]
        if answer.status_code == 201:
            return answer.json()
        assert answer.status_code in (404, 422), answer.text  # not known yet
        return None

    return await eventually(filed, what=f"a {reason} claim on {order_id} accepted")


async def test_refund_never_came_claim_is_granted_at_72_hours_and_paid_once(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    order = await world.deliver(world.order(buyer, seller, [("L1", "Stand mixer", "home", 1, 8999)], shipping=0))
    oid, reference = order["order_id"], order["payment"]["reference"]
    ret = ok(await buyer.request_return(oid, [{"line_id": "L1", "quantity": 1, "reason_code": "DEFECTIVE"}]), 201)
    rid = ret["return_id"]
    ok(await seller.act(rid, "authorize", {"label_type": "prepaid"}), 200)
    ok(await buyer.act(rid, "ship", {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}), 200)
    # The card issuer refuses the return's refund: the buyer is never paid back.
    stack.stripe.declining.add(reference)
    received = ok(
        await seller.act(rid, "receive", {"lines": [{"line_id": "L1", "quantity": 1, "condition": "opened"}]}), 200
    )
    await eventually(
        lambda: any(e.data.get("return_id") == rid for e in stack.tap.of_type("refund.failed")), what="refund.failed"
    )
    stack.stripe.declining.discard(reference)
    stack.move_clock_to(datetime.fromisoformat(received["refund_due_at"]) + timedelta(hours=1))

    claim = await file_when_known(buyer, oid, "RETURN_NOT_REFUNDED", 8999, return_id=rid)
    cid, filed = claim["claim_id"], datetime.fromisoformat(claim["filed_at"])
    assert claim["status"] == "open"
    assert datetime.fromisoformat(claim["respond_by"]) - filed == timedelta(hours=72)
    await expect_claim_emails(stack, cid, [(buyer.email, "claim.filed"), (seller.email, "claim.filed")])

    # 24 h before the deadline the seller is reminded, once; at 72 h the platform grants the claim.
    stack.move_clock_to(filed + timedelta(hours=48, minutes=1))
    await eventually(lambda: "claim.response_due_soon" in types_of(stack, cid), what="the reminder")
    stack.move_clock_to(filed + timedelta(hours=72, minutes=1))
    closed = await claim_in(buyer, cid, "closed")
    decision = closed["decision"]
    assert (decision["outcome"], decision["automatic"], decision["actor"]["role"]) == ("granted", True, "platform")
    assert closed["closure"]["code"] == "paid"
    assert closed["payment"]["paid"] == usd(8999)
    # The claim reads closed as soon as it is written; its event follows through the outbox.
    await eventually(lambda: "claim.closed" in types_of(stack, cid), what="claim.closed on the bus")
    assert types_of(stack, cid) == [
        "claim.filed",
        "claim.response_due_soon",
        "claim.granted",
        "claim.closed",
    ]

    # Paid exactly once, through the gateway, as a refund of kind `claim`.
    refund_id = closed["payment"]["refund_id"]
    paid = [c for c in stack.stripe.refunds(refund_id) if c.status == 200]
    assert len(paid) == 1 and paid[0].params["amount"] == "8999"
    issued = [e for e in stack.tap.of_type("refund.issued") if e.data["refund_id"] == refund_id]
    assert len(issued) == 1 and issued[0].data["kind"] == "claim" and issued[0].data["claim_id"] == cid
    await expect_claim_emails(
        stack,
        cid,
        [
            (buyer.email, "claim.filed"),
            (seller.email, "claim.filed"),
            (seller.email, "claim.response_due_soon"),
            (buyer.email, "claim.granted"),
            (seller.email, "claim.granted"),
        ],
    )
    # The seller's answer now comes too late.
    late = await claim_act(seller, cid, "respond", {"kind": "refund", "amount": usd(8999)})
    assert late.status_code == 409


async def test_contested_claim_is_denied_by_an_agent(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    # Ordered 19 days ago: item-not-received claims open 15 days after the order.
    order = await world.deliver(
        world.order(buyer, seller, [("L1", "Trail shoes", "shoes", 1, 12900)], shipping=500, days_ago=16)
    )
    oid = order["order_id"]
    # Another buyer cannot file on this order: refused exactly as for an order that does not exist.
    stranger = world.buyer("Eve Other")
    theirs = await file_claim(stranger, oid, "ITEM_NOT_RECEIVED", 100)
    unknown = await file_claim(stranger, f"{oid}-none", "ITEM_NOT_RECEIVED", 100)
    assert theirs.status_code == unknown.status_code == 422
    assert theirs.json()["errors"] == unknown.json()["errors"]

    claim = await file_when_known(buyer, oid, "ITEM_NOT_RECEIVED", 13400)
    cid = claim["claim_id"]
    # Asking for more than was paid is refused and changes nothing.
    too_much = await file_claim(buyer, oid, "ITEM_NOT_RECEIVED", total_paid(order) + 1)
    assert too_much.status_code in (409, 422)
    assert (await stranger.call("disputes", "GET", f"/v1/claims/{cid}")).status_code == 404

    evidence = {"carrier": "USPS", "tracking_number": "9400111899560000000042", "text": "Delivered to the porch."}
    contested = ok(await claim_act(seller, cid, "respond", {"kind": "contest", "evidence": evidence}), 200)
    assert contested["status"] == "contested"
    # Only an agent decides; the buyer cannot.
    assert (await claim_act(buyer, cid, "decide", {"outcome": "grant", "note": "mine"})).status_code in (403, 404)
    denied = ok(
        await claim_act(world.agent, cid, "decide", {"outcome": "deny", "note": "Carrier confirms delivery"}), 200
    )
    assert denied["status"] == "denied" and denied["decision"]["note"] == "Carrier confirms delivery"
    await eventually(
        lambda: types_of(stack, cid) == ["claim.filed", "claim.seller_responded", "claim.denied"],
        what="the claim's three events",
    )
    await expect_claim_emails(
        stack,
        cid,
        [
            (buyer.email, "claim.filed"),
            (seller.email, "claim.filed"),
            (buyer.email, "claim.denied"),
            (seller.email, "claim.denied"),
        ],
    )
    assert not [c for c in stack.stripe.calls if c.path == "/v1/refunds" and c.params.get("metadata[order_id]") == oid]


async def test_chargeback_on_a_refunded_order_is_answered_by_the_platform(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    order = await world.deliver(world.order(buyer, seller, [("L1", "Desk lamp", "home", 1, 4599)], shipping=0))
    oid, reference = order["order_id"], order["payment"]["reference"]
    refund = ok(
        await seller.call(
            "refunds", "POST", "/v1/refunds", json={"order_id": oid}, headers={"Idempotency-Key": uuid.uuid4().hex}
        ),
        201,
        202,
    )
    await eventually(
        lambda: any(e.data["refund_id"] == refund["refund_id"] for e in stack.tap.of_type("refund.issued")),
        what="the seller's full refund",
    )

    dispute_id = f"dp_{uuid.uuid4().hex[:24]}"
    created = dispute_event(
        "charge.dispute.created", dispute_id, reference, 4599, reason="product_not_received", status="needs_response"
    )

    async def opened() -> list:
        answer = await post_webhook(stack, created)
        assert answer.status_code == 200, answer.text
        return [
            e for e in stack.tap.of_type("chargeback.evidence_submitted") if e.data["gateway_dispute_id"] == dispute_id
        ]

    submitted = (await eventually(opened, what="evidence submitted for the refunded order"))[0]
    chargeback = submitted.data
    assert chargeback["order_id"] == oid and chargeback["automatic"] is True
    assert chargeback["category"] == "service"
    assert refund["refund_id"] in (chargeback["evidence"]["refund_reference"] or "") + (
        chargeback["evidence"]["text"] or ""
    )
    to_stripe = [c for c in stack.stripe.calls if c.path == f"/v1/disputes/{dispute_id}" and c.method == "POST"]
    assert len(to_stripe) == 1 and to_stripe[0].status == 200 and to_stripe[0].params.get("submit") == "true"

    # The dispute is won. An exact replay of that signed delivery is refused; Stripe's own
    # redelivery (the same event, signed anew) is accepted and changes nothing.
    closed = dispute_event(
        "charge.dispute.closed", dispute_id, reference, 4599, reason="product_not_received", status="won"
    )
    payload, secret = json.dumps(closed).encode(), stack.env()["STRIPE_WEBHOOK_SECRET"]
    signature = sign(payload, secret)
    assert (await post_webhook(stack, closed, signature)).status_code == 200
    cid = chargeback["chargeback_id"]
    await eventually(lambda: "chargeback.won" in types_of(stack, cid), what="chargeback.won")
    replay = await post_webhook(stack, closed, signature)
    assert replay.status_code == 400 and replay.headers["content-type"].startswith("application/problem+json")
    redelivered = await post_webhook(stack, closed, sign(payload, secret, at=int(time.time()) + 2))
    assert redelivered.status_code == 200
    assert types_of(stack, cid) == ["chargeback.opened", "chargeback.evidence_submitted", "chargeback.won"]
    unsigned = await stack.http("disputes").post("/v1/webhooks/stripe", json=closed)
    assert unsigned.status_code == 400 and unsigned.headers["content-type"].startswith("application/problem+json")


async def test_order_defect_rate_counts_feedback_claims_and_service_chargebacks(stack: Stack, world: World):
    buyers, seller = [world.buyer() for _ in range(5)], world.seller()
    orders = [
        await world.deliver(world.order(b, seller, [("L1", "Mug", "home", 1, 1500)], shipping=0, days_ago=16))
        for b in buyers
    ]

    # Order 0: one-star feedback; order 1: an A-to-z claim; order 2: a service chargeback;
    # order 3: a fraud chargeback (not a defect); order 4: nothing.
    async def leave_feedback() -> bool:
        answer = await buyers[0].call(
            "disputes",
            "POST",
            "/v1/feedback",
            json={"order_id": orders[0]["order_id"], "rating": 1, "comment": "Never again"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        return answer.status_code == 201

    await eventually(leave_feedback, what="feedback accepted")
    await file_when_known(buyers[1], orders[1]["order_id"], "NOT_AS_DESCRIBED", 1500)
    for order, reason in ((orders[2], "product_not_received"), (orders[3], "fraudulent")):
        event = dispute_event(
            "charge.dispute.created",
            f"dp_{uuid.uuid4().hex[:24]}",
            order["payment"]["reference"],
            1500,
            reason=reason,
            status="needs_response",
        )
        assert (await post_webhook(stack, event)).status_code == 200

    async def figures() -> dict | None:
        answer = await seller.call("metrics", "GET", f"/v1/metrics/sellers/{seller.id}/order-defects")
        body = ok(answer, 200)
        counts = (
            body["orders_delivered"],
            body["negative_feedback"]["count"],
            body["a_to_z_claims"]["count"],
            body["service_chargebacks"]["count"],
            body["fraud_chargebacks"],
        )
        return body if counts == (5, 1, 1, 1, 1) else None

    health = await eventually(figures, what="the seller's order defect rate")
    assert health["order_defect_rate"] == {"count": 3, "of": 5, "rate": 0.6}
    assert health["target"] == 0.01 and health["meets_target"] is False
    # +100 for each of the two orders without defect or refund, -500 for each of the three defects.
    assert health["rating"]["perfect_orders"] == 2
    assert health["rating"]["score"] == 2 * 100 - 3 * 500
