"""Resolutions besides a refund on receipt (docs/product.md §12), end to end through public interfaces:
a keep-it offer the buyer accepts, a defective item replaced by a sibling SKU, and a refund taken as
store credit then spent by two checkouts at once.

The harness runs the services with a 5 % store-credit bonus (STORE_CREDIT_BONUS_PERCENT).
Amounts are worked out by hand from the order each test creates.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timedelta

from tests.e2e.expect import expect_events, expect_one_payment
from tests.e2e.harness import Stack, eventually, holds
from tests.e2e.resolutions_world import (
    answer_offer,
    checkout,
    confirm_replacement,
    debit,
    emails_by_event,
    error_fields,
    expect_all_sent,
    expect_emails_to,
    mail_of,
    make_offer,
    order_system,
    refunds_of_order,
    return_in,
    store_credit,
    store_credit_entries,
)
from tests.e2e.world import World, dollars, long_day, ok, usd


async def test_accepted_keep_it_offer_is_refunded_once_and_the_buyer_keeps_the_item(stack: Stack, world: World):
    buyer, seller = world.buyer(), world.seller()
    order = await world.deliver(
        world.order(buyer, seller, [("L1", "Noise-cancelling headphones", "home", 1, 4999)], shipping=0)
    )
    oid = order["order_id"]
    line = {"line_id": "L1", "quantity": 1, "reason_code": "NOT_AS_DESCRIBED", "comment": "Scratched headband"}
    rid = ok(await buyer.request_return(oid, [line]), 201)["return_id"]
    ok(await seller.act(rid, "authorize", {"label_type": "prepaid"}), 200)

    # An offer is in the return's currency, at most what its items are worth (4999), and the seller's to make.
    too_much = await make_offer(seller, rid, usd(5000))
    assert too_much.status_code == 422 and error_fields(too_much) == ["amount.amount"], too_much.text
    euros = await make_offer(seller, rid, {"amount": 1500, "currency": "EUR"})
    assert euros.status_code == 422 and error_fields(euros) == ["amount.currency"], euros.text
    assert (await make_offer(buyer, rid, usd(1500))).status_code == 403
    made = await make_offer(seller, rid, usd(1500), "Keep them: $15.00 back for the scratch.")
    ret = ok(made, 201)
    assert made.headers["location"] == f"/v1/returns/{rid}"
    [offer] = ret["offers"]
    offer_id = offer["offer_id"]
    assert offer_id.startswith("ofr_") and (offer["status"], offer["amount"]) == ("open", usd(1500))
    assert offer["made_by"] == {"role": "seller", "id": seller.id}
    made_at, expires_at = datetime.fromisoformat(offer["made_at"]), datetime.fromisoformat(offer["expires_at"])
    assert expires_at - made_at == timedelta(hours=72)
    assert ret["status"] == "authorized" and ret["settlement"] is None
    # One open offer at a time.
    assert (await make_offer(seller, rid, usd(1000))).status_code == 409

    # The buyer's app sends "accept" twice at once (a double tap, a retry): one acceptance (one
    # version, one event: checked below), and both answers show it.
    first, second = await asyncio.gather(
        answer_offer(buyer, rid, offer_id, "accept"), answer_offer(buyer, rid, offer_id, "accept")
    )
    assert [first.status_code, second.status_code] == [200, 200], (first.text, second.text)
    assert first.json()["version"] == second.json()["version"]
    accepted = first.json()
    assert accepted["settlement"] == {"kept_item": True, "offer_id": offer_id, "amount": usd(1500)}
    assert accepted["offers"][0]["status"] == "accepted" and accepted["offers"][0]["decided_at"]
    # The buyer keeps the item: it is not shipped back any more.
    shipped = await buyer.act(rid, "ship", {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"})
    assert shipped.status_code == 409 and shipped.headers["content-type"].startswith("application/problem+json")

    ret = await return_in(buyer, rid, "refunded")
    assert ret["settlement"] == {"kept_item": True, "offer_id": offer_id, "amount": usd(1500)}
    assert ret["receipt"] is None and ret["refund"]["refund_id"] == f"rf_{offer_id}"
    assert ret["refund"]["amount"] == usd(1500)
    [refund] = await refunds_of_order(seller, oid)
    assert (refund["refund_id"], refund["kind"], refund["offer_id"], refund["return_id"]) == (
        f"rf_{offer_id}",
        "offer",
        offer_id,
        rid,
    )
    assert (refund["status"], refund["amount"], refund["destination"]) == ("issued", usd(1500), "original_payment")
    b = refund["breakdown"]
    assert (b["lines"], b["items"], b["other_concession"], b["total"]) == ([], usd(0), usd(1500), usd(1500))
    expect_one_payment(stack, refund, order["payment"]["reference"])

    # A redelivered acceptance, or a late decline, changes nothing and pays nothing.
    again = await answer_offer(buyer, rid, offer_id, "accept")
    assert again.status_code == 200 and again.json()["version"] == ret["version"], again.text
    assert (await answer_offer(buyer, rid, offer_id, "decline", "changed my mind")).status_code == 409
    events = await expect_events(
        stack,
        rid,
        [
            ("return.created", 1),
            ("return.authorized", 2),
            ("return.offer_made", 3),
            ("return.offer_accepted", 4),
            ("refund.issued", refund["version"]),
            ("return.refunded", refund["return_version"] + 1),
        ],
    )
    assert refund["return_version"] == 4
    assert [e.data["refund_id"] for e in events if e.type in ("refund.issued", "return.refunded")] == [
        refund["refund_id"]
    ] * 2

    mails = await expect_emails_to(
        stack,
        rid,
        buyer.email,
        ["return.created", "return.authorized", "return.offer_made", "return.offer_accepted", "return.refunded"],
    )
    offered = mail_of(mails, stack, rid, "return.offer_made")
    assert dollars(1500) in offered.text and long_day(offer["expires_at"]) in offered.text, offered.text
    paid = mail_of(mails, stack, rid, "return.refunded")
    assert dollars(1500) in paid.subject + paid.text

    await eventually(
        lambda: any(
            to == seller.email and kind == "return.offer_accepted" for to, kind, _ in emails_by_event(stack, rid)
        ),
        what="the seller told of the acceptance",
    )
    await expect_all_sent(stack, world.agent, rid)
    to_seller = Counter(kind for to, kind, _ in emails_by_event(stack, rid) if to == seller.email)
    assert to_seller["return.offer_accepted"] == 1 and set(to_seller.values()) == {1}, to_seller
    assert len(stack.stripe.refunds(refund["refund_id"])) == 1
    assert len(await refunds_of_order(seller, oid)) == 1


async def test_defective_item_is_replaced_with_a_sibling_sku_and_nothing_is_refunded(stack: Stack, world: World):
    buyer, seller, orders = world.buyer(), world.seller(), order_system(world)
    policy = await seller.put_policy({"offers_replacements": True, "replacement_ships": "at_authorization"})
    assert (policy["offers_replacements"], policy["replacement_ships"]) == (True, "at_authorization")
    draft = world.order(buyer, seller, [("L1", "Wireless headphones, black", "home", 1, 5999)], shipping=499)
    sku = draft["lines"][0]["sku"]
    blue, pro = f"{sku}-BLUE", f"{sku}-PRO"
    draft["lines"][0]["variants"] = [
        {"sku": blue, "title": "Wireless headphones, blue", "unit_price": usd(5999)},
        {"sku": pro, "title": "Wireless headphones Pro", "unit_price": usd(7999)},
    ]
    order = await world.deliver(draft)
    oid = order["order_id"]
    line = {"line_id": "L1", "quantity": 1, "reason_code": "DEFECTIVE", "comment": "The left ear cup is silent."}

    # A replacement is a SKU of the same listing at the same price.
    pricier = await buyer.request_return(oid, [{**line, "replacement_sku": pro}], resolution="replacement")
    assert pricier.status_code == 422 and error_fields(pricier) == ["lines[0].replacement_sku"], pricier.text
    elsewhere = await buyer.request_return(
        oid, [{**line, "replacement_sku": "SKU-ELSEWHERE"}], resolution="replacement"
    )
    assert elsewhere.status_code == 422 and error_fields(elsewhere) == ["lines[0].replacement_sku"], elsewhere.text
    ret = ok(await buyer.request_return(oid, [{**line, "replacement_sku": blue}], resolution="replacement"), 201)
    rid = ret["return_id"]
    assert (ret["resolution"], ret["fault"], ret["lines"][0]["replacement_sku"]) == ("replacement", "seller", blue)
    replacement = ret["replacement"]
    assert (replacement["status"], replacement["ships"]) == ("requested", "at_authorization")
    assert replacement["lines"] == [{"line_id": "L1", "sku": blue, "quantity": 1}]

    # A seller-fault reason and a policy shipping at authorization: ordered in the authorization's write.
    ret = ok(await seller.act(rid, "authorize", {"label_type": "prepaid"}), 200)
    assert ret["replacement"]["status"] == "ordered" and ret["replacement"]["ordered_at"]
    [ordered] = await eventually(
        lambda: [e for e in stack.tap.of_return(rid) if e.type == "return.replacement_ordered"],
        what="return.replacement_ordered",
    )
    assert ordered.sequence == 3 and ordered.data["replacement"]["status"] == "ordered"
    assert ordered.data["replacement"]["lines"] == [{"line_id": "L1", "sku": blue, "quantity": 1}]

    # The order system ships it and says so; its retry of the same confirmation changes nothing, a
    # different one is a conflict, and the buyer cannot confirm anything.
    shipment = {"status": "shipped", "carrier": "UPS", "tracking_number": "1Z999AA10123456799", "note": "blue pair"}
    assert (await confirm_replacement(buyer, rid, shipment)).status_code == 403
    ret = ok(await confirm_replacement(orders, rid, shipment), 200)
    assert (ret["status"], ret["replacement"]["status"]) == ("authorized", "shipped")
    assert (ret["replacement"]["carrier"], ret["replacement"]["tracking_number"]) == ("UPS", "1Z999AA10123456799")
    again = ok(await confirm_replacement(orders, rid, shipment), 200)
    assert again["version"] == ret["version"]
    other = await confirm_replacement(orders, rid, {**shipment, "tracking_number": "1Z999AA10123456700"})
    assert other.status_code == 409

    ok(await buyer.act(rid, "ship", {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}), 200)
    ok(await seller.act(rid, "receive", {"lines": [{"line_id": "L1", "quantity": 1, "condition": "opened"}]}), 200)
    ret = await return_in(buyer, rid, "replaced")
    assert ret["replaced_at"] and ret["refund_due_at"] is None and ret["refund"] is None
    events = await expect_events(
        stack,
        rid,
        [
            ("return.created", 1),
            ("return.authorized", 2),
            ("return.replacement_ordered", 3),
            ("return.replacement_shipped", 4),
            ("return.shipped", 5),
            ("return.received", 6),
            ("return.replaced", 7),
        ],
    )
    received = events[5].data
    # A defective item goes back to the vendor whatever its condition.
    assert [(r["line_id"], r["disposition"]) for r in received["receipt"]["lines"]] == [("L1", "return_to_vendor")]
    assert received["refund_due_at"] is None

    async def nothing_refunded() -> bool:
        return not await refunds_of_order(world.agent, oid)

    # The refunds service saw return.received long before return.replaced reached the tap; it must not act.
    await holds(nothing_refunded, duration=2.0, what="no refund of the replaced order")
    paid = [c for c in stack.stripe.refunds() if c.params.get("metadata[order_id]") == oid]
    assert not paid, paid

    mails = await expect_emails_to(
        stack,
        rid,
        buyer.email,
        ["return.created", "return.authorized", "return.replacement_shipped", "return.received"],
    )
    sent = mail_of(mails, stack, rid, "return.replacement_shipped")
    assert "1Z999AA10123456799" in sent.text, sent.text
    assert "replacement" in mail_of(mails, stack, rid, "return.received").text.lower()
    await eventually(
        lambda: (
            [k for to, k, _ in emails_by_event(stack, rid) if to == seller.email].count("return.replacement_ordered")
            == 1
        ),
        what="the seller told what to send",
    )
    await expect_all_sent(stack, world.agent, rid)
    assert not [k for _, k, _ in emails_by_event(stack, rid) if k == "return.replaced"]


async def test_refund_to_store_credit_then_two_concurrent_debits(stack: Stack, world: World):
    buyer, seller, shop = world.buyer(), world.seller(), checkout(world)
    order = await world.deliver(world.order(buyer, seller, [("L1", "Ceramic teapot", "home", 1, 3999)], shipping=0))
    oid = order["order_id"]
    line = {"line_id": "L1", "quantity": 1, "reason_code": "DAMAGED_ON_ARRIVAL", "comment": "Cracked lid"}
    ret = ok(await buyer.request_return(oid, [line], refund_to="store_credit"), 201)
    rid = ret["return_id"]
    assert (ret["refund_to"], ret["resolution"]) == ("store_credit", "refund")
    ok(await seller.act(rid, "authorize", {"label_type": "prepaid"}), 200)
    ok(await buyer.act(rid, "ship", {"carrier": "USPS", "tracking_number": "9400111899560000000077"}), 200)
    receipt = {"lines": [{"line_id": "L1", "quantity": 1, "condition": "damaged_in_transit"}]}
    ok(await seller.act(rid, "receive", receipt), 200)

    ret = await return_in(buyer, rid, "refunded")
    [refund] = await refunds_of_order(buyer, oid)
    # 3999 back (the seller's fault, the whole order, no shipping paid), as credit: plus the 5 % bonus,
    # 199.95 rounded half-up to 200, which the marketplace pays.
    assert (refund["kind"], refund["status"], refund["amount"]) == ("return", "issued", usd(3999))
    assert (refund["destination"], refund["gateway"], refund["store_credit_bonus"]) == (
        "store_credit",
        "store_credit",
        usd(200),
    )
    assert ret["refund"]["refund_id"] == refund["refund_id"]
    # No card refund: the gateway was never asked.
    assert not stack.stripe.refunds(refund["refund_id"])
    assert not [c for c in stack.stripe.refunds() if c.params.get("metadata[order_id]") == oid]

    def grants() -> list:
        return [e for e in stack.tap.of_type("store_credit.granted") if e.subject == buyer.id]

    [granted] = await eventually(grants, what="store_credit.granted")
    g = granted.data
    assert (g["kind"], g["buyer_id"], g["seller_id"], g["refund_id"], g["return_id"], g["order_id"]) == (
        "grant",
        buyer.id,
        seller.id,
        refund["refund_id"],
        rid,
        oid,
    )
    assert (g["amount"], g["bonus"], g["balance"]) == (usd(4199), usd(200), usd(4199))
    assert g["actor"] == {"role": "platform", "id": "refunds"}
    account = ok(await store_credit(buyer, buyer.id), 200)
    assert (account["buyer_id"], account["balances"]) == (buyer.id, [usd(4199)])
    # Another buyer's balance is not theirs to see: as if it did not exist.
    assert (await store_credit(world.buyer(), buyer.id)).status_code == 404

    # A debit must carry an Idempotency-Key: it moves money.
    keyless = await debit(shop, buyer.id, usd(100), "cart-0", None)
    assert keyless.status_code in (400, 422) and "idempotency-key" in keyless.text.lower(), keyless.text
    # Two checkouts spend 30.00 each at the same moment: together more than the 41.99 there is.
    first, second = await asyncio.gather(
        debit(shop, buyer.id, usd(3000), "cart-1", f"pay-{uuid.uuid4().hex}"),
        debit(shop, buyer.id, usd(3000), "cart-2", f"pay-{uuid.uuid4().hex}"),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 422], (first.text, second.text)
    won, lost = (first, second) if first.status_code == 201 else (second, first)
    assert error_fields(lost) == ["amount"], lost.text
    entry = won.json()
    assert (entry["kind"], entry["amount"], entry["balance"]) == ("debit", usd(3000), usd(1199))
    assert entry["actor"] == {"role": "service", "id": shop.id}
    assert won.headers["location"]
    # The winning checkout's retry with its key gets the same entry; nothing is spent twice.
    won_key = won.request.headers["Idempotency-Key"]
    replay = await debit(shop, buyer.id, usd(3000), entry["reference"], won_key)
    assert replay.status_code in (200, 201) and replay.json()["entry_id"] == entry["entry_id"], replay.text

    def debits() -> list:
        return [e for e in stack.tap.of_type("store_credit.debited") if e.subject == buyer.id]

    [debited] = await eventually(debits, what="store_credit.debited")
    assert debited.data["entry_id"] == entry["entry_id"] and debited.data["balance"] == usd(1199)
    assert ok(await store_credit(buyer, buyer.id), 200)["balances"] == [usd(1199)]
    entries = await store_credit_entries(buyer, buyer.id)
    assert [(e["kind"], e["amount"], e["balance"]) for e in entries] == [
        ("debit", usd(3000), usd(1199)),
        ("grant", usd(4199), usd(4199)),
    ]

    mails = await expect_emails_to(
        stack,
        rid,
        buyer.email,
        ["return.created", "return.authorized", "return.received", "return.refunded", "store_credit.granted"],
    )
    credited = mail_of(mails, stack, rid, "store_credit.granted")
    assert dollars(4199) in credited.text and dollars(200) in credited.text, credited.text
    refunded_mail = mail_of(mails, stack, rid, "return.refunded")
    assert "store credit" in (refunded_mail.subject + refunded_mail.text).lower(), refunded_mail.text
    await expect_all_sent(stack, world.agent, rid)
    assert len(grants()) == 1 and len(debits()) == 1
