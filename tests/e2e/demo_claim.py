"""The demo's second story: an A-to-z claim its seller never answers, granted and paid by the platform.

The buyer of a delivered order says the parcel never came (ITEM_NOT_RECEIVED) and claims the whole
order. The seller stays silent: the demo moves the services' clock (the CLOCK_FILE offset every
process reads, shared.clock.FileOffsetClock) to the reminder, then past the 72 h response deadline.
The disputes service's deadline job grants the claim by itself (decision.automatic, funded by the
seller), the refunds service pays it once (refund kind `claim`, id "rf_" + claim id), and the claim
closes as paid. Prints the claim as buyer and seller see it, the refund, the events and the emails.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aio_pika

from tests.e2e.demo import money, section, step

if TYPE_CHECKING:
    from tests.e2e.demo import Demo

AMOUNT = {"amount": 9400, "currency": "USD"}  # headphones 89.00 + shipping 5.00
EMAIL_WAIT_S = 15.0  # how long the report waits for the claim's emails before showing what came


async def claim_story(demo: Demo, connection: aio_pika.abc.AbstractRobustConnection) -> None:
    tag = uuid.uuid4().hex[:6]
    buyer = demo.buyer | {"id": f"demo-buyer-{tag}", "email": f"dana.{tag}@buyers.example"}
    seller = demo.seller | {"id": f"demo-seller-{tag}", "name": "Sound Co", "email": f"orders.{tag}@sound.example"}
    order_id = f"demo-claim-order-{tag}"
    now = demo.services_now()
    order = {
        "order_id": order_id,
        "marketplace": "US",
        "currency": "USD",
        "buyer": buyer,
        "seller": seller,
        "lines": [
            {
                "line_id": "L1",
                "sku": "HEADPHONES-BT",
                "title": "Wireless headphones",
                "category": "electronics",
                "quantity": 1,
                "unit_price": {"amount": 8900, "currency": "USD"},
            }
        ],
        "shipping_paid": {"amount": 500, "currency": "USD"},
        # A claim opens 15 days after the order (product, disputes): this one is 20 days old.
        "ordered_at": (now - timedelta(days=20)).isoformat(),
        "delivered_at": (now - timedelta(days=16)).isoformat(),
        "payment": {"provider": "stripe", "reference": f"pi_demo{uuid.uuid4().hex[:12]}"},
    }
    paths = (await demo.http.get(demo.urls["disputes"] + "/openapi.json")).json().get("paths", {})
    if "/v1/claims" not in paths:
        raise SystemExit("demo: this disputes service has no claims API (/v1/claims) yet; skipping the claim story")
    step("upstream order system", f"order {order_id}: headphones 89.00 + shipping 5.00 = 94.00 USD, 'delivered'")
    await demo.publish_order(connection, order)

    def call(role: str, sub: str, method: str, path: str, service: str = "disputes", **kw: Any) -> Any:
        return demo.call(role, sub, service, method, path, **kw)

    claim = await file_claim(demo, buyer["id"], order_id)
    cid = claim["claim_id"]
    respond_by = datetime.fromisoformat(claim["respond_by"])
    step("buyer", f"files claim {cid} (ITEM_NOT_RECEIVED, {money(claim['amount'])}): {claim['status']}")
    step("platform", f"the seller has until {respond_by:%Y-%m-%d %H:%M} UTC to refund or contest; they do not")

    async def claim_now(*statuses: str) -> dict[str, Any] | None:
        current = await call("buyer", buyer["id"], "GET", f"/v1/claims/{cid}")
        return current if current["status"] in statuses else None

    async def reminded() -> dict[str, Any] | None:
        current = await call("seller", seller["id"], "GET", f"/v1/claims/{cid}")
        return current if current["reminded"] else None

    slow = demo.timeout + 60  # the deadline job runs every JOB_INTERVAL_S (30 s by default)
    move_clock(demo, respond_by - timedelta(hours=23, minutes=59))
    step("clock", f"moved to {demo.services_now():%Y-%m-%d %H:%M} UTC (24 h before the deadline)")
    await demo.until("the claim's reminder (claim.response_due_soon)", reminded, timeout=slow)
    step("platform", "reminds the seller: the claim will be granted if they do not answer")

    move_clock(demo, respond_by + timedelta(minutes=1))
    step("clock", f"moved to {demo.services_now():%Y-%m-%d %H:%M} UTC (past the 72 h deadline)")
    granted = await demo.until("the automatic grant", lambda: claim_now("paying", "closed"), timeout=slow)
    decision = granted["decision"]
    step(
        "platform",
        f"grants it by itself (automatic {decision['automatic']}, funded by {decision['funded_by']}): "
        f"{money(decision['amount'])}",
    )
    closed = await demo.until("the claim's refund (claim.closed)", lambda: claim_now("closed"))
    step("refunds service", f"pays it once; the claim is {closed['status']} ({closed['closure']['code']})")
    await report(demo, cid, order_id, buyer, seller)


async def file_claim(demo: Demo, buyer_id: str, order_id: str) -> dict[str, Any]:
    """POST /v1/claims, again with the same Idempotency-Key while the disputes service does not know
    the order yet (it learns it from order.delivered): a refused request stores nothing."""
    body = {
        "order_id": order_id,
        "reason": "ITEM_NOT_RECEIVED",
        "amount": AMOUNT,
        "note": "Tracking says delivered, but nothing came.",
    }
    headers = demo.headers("buyer", buyer_id, "disputes") | {"Idempotency-Key": f"demo-{order_id}"}

    async def filed() -> dict[str, Any] | None:
        response = await demo.http.post(demo.urls["disputes"] + "/v1/claims", json=body, headers=headers)
        if response.status_code == 201:
            return response.json()
        problem = response.json() if response.headers.get("content-type", "").endswith("json") else {}
        unknown_order = response.status_code == 404 or any(
            e.get("field") == "order_id" for e in problem.get("errors", [])
        )
        if not unknown_order:
            raise SystemExit(f"demo: POST disputes/v1/claims -> {response.status_code}: {response.text[:500]}")
        return None

    return await demo.until("the disputes service to know the order and take the claim", filed)


def move_clock(demo: Demo, to: datetime) -> None:
    """Every service's "now" becomes `to` (forward only): a new offset file, so each re-reads it."""
    offset = to - datetime.now(UTC)
    if offset <= demo.clock_offset():
        return
    if not demo.clock_file.parent.is_dir():
        raise SystemExit(f"demo: no clock file {demo.clock_file}; start the stack with scripts/up")
    tmp = demo.clock_file.with_suffix(".tmp")
    tmp.write_text(f"{offset.total_seconds():.3f}")
    tmp.replace(demo.clock_file)


async def report(demo: Demo, cid: str, order_id: str, buyer: dict[str, Any], seller: dict[str, Any]) -> None:
    claim = await demo.call("buyer", buyer["id"], "disputes", "GET", f"/v1/claims/{cid}")
    section("BUYER: the claim (GET /v1/claims/{id})")
    payment = claim["payment"]
    print(f"  claim {cid}: {claim['status']} ({claim['closure']['code']}), asked {money(claim['amount'])}")
    print(f"  paid {money(payment['paid'])} by refund {payment['refund_id']} at {payment['issued_at'][:19]}")
    for entry in claim["timeline"]:
        print(f"    {entry['at'][:19]}  {entry['action']:<16} -> {entry['status']:<8} by {entry['actor']['role']}")

    seller_view = await demo.call("seller", seller["id"], "disputes", "GET", f"/v1/claims/{cid}")
    decision = seller_view["decision"]
    section("SELLER: the claim (GET /v1/claims/{id})")
    print(
        f"  responded: {seller_view['seller_response'] is not None}; reminded: {seller_view['reminded']}; "
        f"decision {decision['outcome']} by {decision['actor']['role']}:{decision['actor']['id']}, "
        f"automatic {decision['automatic']}, funded by {decision['funded_by']}"
    )

    page = await demo.call("buyer", buyer["id"], "refunds", "GET", "/v1/refunds", params={"order_id": order_id})
    refunds = page["items"]
    section("REFUNDS of the order (GET /v1/refunds?order_id=)")
    for refund in refunds:
        print(
            f"  {refund['refund_id']}: kind {refund['kind']}, claim {refund['claim_id']}, {refund['status']}, "
            f"{money(refund['amount'])} via {refund['gateway']} ({refund['gateway_reference']})"
        )
    print(f"  {len(refunds)} refund(s) for the order: the claim was paid {'once' if len(refunds) == 1 else 'WRONGLY'}")

    section(f"EVENTS on {demo.exchange} (type, sequence, subject)")
    mine: set[str] = set()  # ids of the claim's and the order's events; a notification names its event
    for event in demo.events:
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        if (
            event.get("subject") in (cid, order_id)
            or data.get("claim_id") == cid
            or data.get("order_id") == order_id
            or data.get("event_id") in mine
        ):
            mine.add(event["id"])
            extra = f"  [{data['template']} -> {data['recipient_role']}]" if event["type"].startswith("notif") else ""
            print(f"  {event['type']:<26} seq {event.get('sequence', 0):<3} {event.get('subject')}{extra}")

    roles = {buyer["email"]: "buyer", seller["email"]: "seller"}
    deadline = asyncio.get_running_loop().time() + EMAIL_WAIT_S
    # Filed (buyer, seller), reminder (seller), granted (buyer, seller), refunded (buyer, seller).
    while len(demo.mails(roles)) < 7 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.3)
    section(f"EMAILS in the SMTP sink's Maildir ({demo.maildir})")
    for received, recipient, subject in demo.mails(roles):
        print(f"  {received}  to {roles[recipient]:<6} {subject}")
