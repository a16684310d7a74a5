"""The demo's third story: a keep-it offer the buyer accepts, paid as store credit, then spent.

The buyer of a Bluetooth speaker asks to return it (NOT_AS_DESCRIBED) and wants any refund as store
credit (`refund_to: store_credit`). The seller authorizes, then offers 20.00 USD for the buyer to
keep the speaker; the buyer accepts. The refunds service pays the offer once (refund kind `offer`,
id "rf_" + offer id) to the buyer's store credit, with the marketplace bonus if one is configured
(STORE_CREDIT_BONUS_PERCENT), and the return ends `refunded` without the item coming back. A
checkout then spends 15.00 USD of that credit. Prints the return, the refund, the balance and its
entries, the events and the emails.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import aio_pika

from tests.e2e.demo import money, section, step

if TYPE_CHECKING:
    from tests.e2e.demo import Demo

OFFER = {"amount": 2000, "currency": "USD"}
SPEND = {"amount": 1500, "currency": "USD"}
EMAIL_WAIT_S = 15.0  # how long the report waits for the story's emails before showing what came


async def has_resolutions(demo: Demo) -> bool:
    """Whether the running services have the offers and store-credit APIs (product §12)."""
    returns = (await demo.http.get(demo.urls["returns"] + "/openapi.json")).json().get("paths", {})
    refunds = (await demo.http.get(demo.urls["refunds"] + "/openapi.json")).json().get("paths", {})
    return any(path.endswith("/offers") for path in returns) and any("/store-credit/" in path for path in refunds)


async def resolution_story(demo: Demo, connection: aio_pika.abc.AbstractRobustConnection) -> None:
    if not await has_resolutions(demo):
        print("  (these services have no keep-it offers or store credit yet; skipping this story)")
        return
    tag = uuid.uuid4().hex[:6]
    buyer: dict[str, Any] = demo.buyer | {"id": f"demo-buyer-{tag}", "email": f"dana.{tag}@buyers.example"}
    seller: dict[str, Any] = demo.seller | {
        "id": f"demo-seller-{tag}",
        "name": "Loud Co",
        "email": f"orders.{tag}@loud.example",
    }
    order_id = f"demo-offer-order-{tag}"
    delivered = demo.services_now() - timedelta(days=3)
    order = {
        "order_id": order_id,
        "marketplace": "US",
        "currency": "USD",
        "buyer": buyer,
        "seller": seller,
        "lines": [
            {
                "line_id": "L1",
                "sku": "SPEAKER-BT",
                "title": "Bluetooth speaker",
                "category": "electronics",
                "quantity": 1,
                "unit_price": {"amount": 6000, "currency": "USD"},
            }
        ],
        "shipping_paid": {"amount": 0, "currency": "USD"},
        "ordered_at": (delivered - timedelta(days=4)).isoformat(),
        "delivered_at": delivered.isoformat(),
        "payment": {"provider": "stripe", "reference": f"pi_demo{uuid.uuid4().hex[:12]}"},
    }
    step("upstream order system", f"order {order_id}: Bluetooth speaker 60.00 USD, free shipping, 'delivered'")
    await demo.publish_order(connection, order)

    def call(role: str, sub: str, service: str, method: str, path: str, **kw: Any) -> Any:
        return demo.call(role, sub, service, method, path, **kw)

    async def order_known() -> bool:
        answer = await demo.http.get(
            demo.urls["returns"] + f"/v1/orders/{order_id}", headers=demo.headers("agent", "demo-agent", "returns")
        )
        return answer.status_code == 200

    await demo.until("the order to reach the returns service", order_known)
    line = {"line_id": "L1", "quantity": 1, "reason_code": "NOT_AS_DESCRIBED", "comment": "Much quieter than listed"}
    ret = await call(
        "buyer",
        buyer["id"],
        "returns",
        "POST",
        "/v1/returns",
        json={"order_id": order_id, "lines": [line], "refund_to": "store_credit"},
    )
    rid = ret["return_id"]
    step("buyer", f"asks to return the speaker, any refund as store credit: {rid} is {ret['status']}")
    ret = await call("seller", seller["id"], "returns", "POST", f"/v1/returns/{rid}/authorize", json={})
    step("seller", f"authorizes: {ret['status']}")
    note = "Keep the speaker: 20.00 back for the trouble."
    ret = await call(
        "seller", seller["id"], "returns", "POST", f"/v1/returns/{rid}/offers", json={"amount": OFFER, "note": note}
    )
    offer = ret["offers"][-1]
    step(
        "seller",
        f"offers {money(offer['amount'])} to keep it: {offer['offer_id']}, open until {offer['expires_at'][:16]}",
    )
    path = f"/v1/returns/{rid}/offers/{offer['offer_id']}/accept"
    ret = await call("buyer", buyer["id"], "returns", "POST", path, json={})
    step("buyer", f"accepts and keeps the speaker: settlement {ret['settlement']}")

    async def refunded() -> dict[str, Any] | None:
        current = await call("buyer", buyer["id"], "returns", "GET", f"/v1/returns/{rid}")
        return current if current["status"] == "refunded" else None

    await demo.until("the offer's refund", refunded)
    step("refunds service", "pays the offer once, to the buyer's store credit; the return is refunded")
    spend_key = f"demo-checkout-{tag}"
    answer = await demo.http.post(
        demo.urls["refunds"] + f"/v1/store-credit/{buyer['id']}/debits",
        json={"amount": SPEND, "reference": f"cart-{tag}"},
        headers=demo.headers("service", "demo-checkout", "refunds") | {"Idempotency-Key": spend_key},
    )
    if answer.status_code != 201:
        raise SystemExit(f"demo: POST refunds/v1/store-credit/.../debits -> {answer.status_code}: {answer.text[:500]}")
    entry = answer.json()
    step("checkout", f"spends {money(entry['amount'])} of it: balance {money(entry['balance'])}")
    await report(demo, rid, order_id, buyer, seller)


async def report(demo: Demo, rid: str, order_id: str, buyer: dict[str, Any], seller: dict[str, Any]) -> None:
    ret = await demo.call("buyer", buyer["id"], "returns", "GET", f"/v1/returns/{rid}")
    section("BUYER: the return (GET /v1/returns/{id})")
    print(f"  return {rid}: {ret['status']}, refund to {ret['refund_to']}, settlement {ret['settlement']}")
    for offer in ret["offers"]:
        print(
            f"    offer {offer['offer_id']}: {money(offer['amount'])} {offer['status']} by {offer['made_by']['role']}"
        )

    page = await demo.call("buyer", buyer["id"], "refunds", "GET", "/v1/refunds", params={"order_id": order_id})
    section("REFUNDS of the order (GET /v1/refunds?order_id=)")
    for refund in page["items"]:
        bonus = money(refund["store_credit_bonus"]) if refund.get("store_credit_bonus") else "none"
        print(
            f"  {refund['refund_id']}: kind {refund['kind']}, {refund['status']}, {money(refund['amount'])} "
            f"to {refund['destination']} via {refund['gateway']} (bonus {bonus})"
        )

    account = await demo.call("buyer", buyer["id"], "refunds", "GET", f"/v1/store-credit/{buyer['id']}")
    entries = await demo.call("buyer", buyer["id"], "refunds", "GET", f"/v1/store-credit/{buyer['id']}/entries")
    section("BUYER: store credit (GET /v1/store-credit/{buyer_id} and .../entries)")
    print("  balance: " + (", ".join(money(b) for b in account["balances"]) or "none"))
    for e in entries["items"]:
        print(f"    {e['at'][:19]}  {e['kind']:<6} {money(e['amount']):>10}  -> balance {money(e['balance'])}")

    section(f"EVENTS on {demo.exchange} (type, sequence, subject)")
    mine: set[str] = set()  # the return's, its refund's and the buyer's store-credit events; notifications name them
    for event in demo.events:
        data: dict[str, Any] = event["data"] if isinstance(event.get("data"), dict) else {}
        if event.get("subject") in (rid, buyer["id"]) or data.get("return_id") == rid or data.get("event_id") in mine:
            mine.add(event["id"])
            extra = f"  [{data['template']} -> {data['recipient_role']}]" if event["type"].startswith("notif") else ""
            print(f"  {event['type']:<28} seq {event.get('sequence', 0):<3} {event.get('subject')}{extra}")

    roles = {buyer["email"]: "buyer", seller["email"]: "seller"}
    deadline = asyncio.get_running_loop().time() + EMAIL_WAIT_S
    # Request (buyer, seller), authorized, offer made, offer accepted (buyer, seller), refunded, credit granted.
    while len(demo.mails(roles)) < 8 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.3)
    section(f"EMAILS in the SMTP sink's Maildir ({demo.maildir})")
    for received, recipient, subject in demo.mails(roles):
        print(f"  {received}  to {roles[recipient]:<6} {subject}")
