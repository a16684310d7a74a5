"""Three stories on the running local stack, and what each party saw (a return, an A-to-z claim, an offer).

One return through its whole life, then an A-to-z claim the seller leaves unanswered
(tests/e2e/demo_claim.py), then a keep-it offer paid as store credit (tests/e2e/demo_resolution.py).

    scripts/up && scripts/demo          (or: uv run python -m tests.e2e.demo --help)

Talks to the stack `scripts/up` started, only through its public interfaces: the upstream order
system's `order.delivered` on the orders exchange, the HTTP APIs with tokens signed with
.local/jwt-secret, a temporary queue bound to the events exchange, the SMTP sink's Maildir
(MAILDIR in .local/env), the metrics API and, for the claim, the clock-offset file every service
reads (CLOCK_FILE, .local/clock). Every run uses a new buyer, seller and order.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aio_pika
import httpx

from shared.tokens import mint

REPO = Path(__file__).resolve().parents[2]
NEW_YORK = ZoneInfo("America/New_York")


def local_env() -> dict[str, str]:
    """`.local/env` (written by scripts/infra-up) under the process environment."""
    values: dict[str, str] = {}
    path = REPO / ".local" / "env"
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip().removeprefix("export ").strip()
            if "=" in line and not line.startswith("#"):
                name, value = line.split("=", 1)
                values[name] = value.strip().strip("'\"")
    return values | {k: v for k, v in os.environ.items() if k in values or k in ("JWT_SECRET",)}


def money(m: dict[str, Any]) -> str:
    return f"{m['amount'] / 100:.2f} {m['currency']}"


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        env = local_env()
        self.amqp_url = args.amqp_url or env.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
        self.exchange, self.orders_exchange = args.exchange, args.orders_exchange
        self.maildir = Path(args.maildir or env.get("MAILDIR", str(REPO / ".local" / "mail")))
        secret_file = REPO / ".local" / "jwt-secret"
        self.secret = env.get("JWT_SECRET") or (secret_file.read_text().strip() if secret_file.exists() else "")
        if not self.secret:
            sys.exit("demo: no JWT secret (.local/jwt-secret); is the stack up? Run scripts/up first.")
        self.urls = {
            "returns": args.returns_url,
            "refunds": args.refunds_url,
            "notifications": args.notifications_url,
            "metrics": args.metrics_url,
            "disputes": args.disputes_url,
        }
        self.stories = ["return", "claim", "resolution"] if args.story == "all" else [args.story]
        self.clock_file = Path(args.clock_file or os.environ.get("CLOCK_FILE") or REPO / ".local" / "clock")
        self.timeout = args.timeout
        tag = uuid.uuid4().hex[:6]
        self.buyer = {
            "id": f"demo-buyer-{tag}",
            "name": "Dana Demo",
            "email": f"dana.{tag}@buyers.example",
            "locale": "en",
        }
        self.seller = {
            "id": f"demo-seller-{tag}",
            "name": "Pottery Co",
            "email": f"orders.{tag}@pottery.example",
            "locale": "en",
            "return_address": {
                "name": "Pottery Co returns",
                "line1": "12 Kiln Road",
                "city": "Newark",
                "region": "NJ",
                "postal_code": "07102",
                "country": "US",
            },
        }
        self.order_id = f"demo-order-{tag}"
        self.events: list[dict[str, Any]] = []
        self.http = httpx.AsyncClient(timeout=15)

    def headers(self, role: str, sub: str, service: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(self.secret, role, sub, service)}"}

    async def call(self, role: str, sub: str, service: str, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(
            method, self.urls[service] + path, headers=self.headers(role, sub, service), **kwargs
        )
        if response.status_code >= 400:
            sys.exit(f"demo: {method} {service}{path} -> {response.status_code}: {response.text[:500]}")
        return response.json()

    async def as_buyer(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        return await self.call("buyer", self.buyer["id"], service, method, path, **kwargs)

    async def as_seller(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        return await self.call("seller", self.seller["id"], service, method, path, **kwargs)

    async def as_agent(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        return await self.call("agent", "demo-agent", service, method, path, **kwargs)

    async def until(self, what: str, check: Any, timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            result = await check()
            if result:
                return result
            if time.monotonic() > deadline:
                sys.exit(
                    f"demo: gave up waiting for {what} after {timeout or self.timeout:.0f}s "
                    "(are all five services up? logs: .local/logs/)"
                )
            await asyncio.sleep(0.2)

    # ---- the story --------------------------------------------------------------------------

    async def publish_order(self, connection: aio_pika.abc.AbstractRobustConnection, order: dict[str, Any]) -> None:
        """The upstream order system: `order.delivered` (CloudEvents JSON) on the orders exchange."""
        channel = await connection.channel(publisher_confirms=True)
        orders = await channel.declare_exchange(self.orders_exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        event_id = str(uuid.uuid4())
        await orders.publish(
            aio_pika.Message(
                json.dumps(
                    {
                        "specversion": "1.0",
                        "id": event_id,
                        "source": "/demo/orders",
                        "type": "order.delivered",
                        "time": datetime.now(UTC).isoformat(),
                        "subject": order["order_id"],
                        "datacontenttype": "application/json",
                        "sequence": 1,
                        "data": order,
                    }
                ).encode(),
                message_id=event_id,
                type="order.delivered",
                content_type="application/cloudevents+json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key="order.delivered",
        )

    def clock_offset(self) -> timedelta:
        """What the services add to the system time (shared.clock.FileOffsetClock): 0 without the file."""
        try:
            return timedelta(seconds=float(self.clock_file.read_text().strip() or "0"))
        except FileNotFoundError:
            return timedelta()

    def services_now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset()

    async def run(self) -> None:
        from tests.e2e.demo_claim import claim_story
        from tests.e2e.demo_resolution import resolution_story

        for name, url in self.urls.items():
            if name == "disputes" and "claim" not in self.stories:
                continue
            try:
                ready = await self.http.get(url + "/readyz")
            except httpx.HTTPError:
                ready = None
            if ready is None or ready.status_code != 200:
                sys.exit(f"demo: the {name} service does not answer ready at {url}; start the stack: scripts/up")
        connection = await aio_pika.connect_robust(self.amqp_url, timeout=10)
        try:
            await self.listen(connection)
            if "return" in self.stories:
                print("A return's whole life on the local stack:")
                await self.story(connection)
            if "claim" in self.stories:
                print("\nAn A-to-z claim the seller does not answer:")
                await claim_story(self, connection)
            if "resolution" in self.stories:
                print("\nA keep-it offer paid as store credit, then spent:")
                await resolution_story(self, connection)
        finally:
            await connection.close()
            await self.http.aclose()

    async def listen(self, connection: aio_pika.abc.AbstractRobustConnection) -> None:
        """A temporary queue on the events exchange, bound to everything, gone when we disconnect."""
        channel = await connection.channel()
        exchange = await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="#")

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            self.events.append(json.loads(message.body))

        await queue.consume(on_message, no_ack=True)

    async def story(self, connection: aio_pika.abc.AbstractRobustConnection) -> None:
        today = self.services_now().astimezone(NEW_YORK).date()  # the claim story moves the services' clock
        delivered = datetime.combine(today - timedelta(days=3), day_time(14), tzinfo=NEW_YORK)
        order = {
            "order_id": self.order_id,
            "marketplace": "US",
            "currency": "USD",
            "buyer": self.buyer,
            "seller": self.seller,
            "lines": [
                {
                    "line_id": "L1",
                    "sku": "VASE-BLUE",
                    "title": "Blue ceramic vase",
                    "category": "home_decor",
                    "quantity": 1,
                    "unit_price": {"amount": 4999, "currency": "USD"},
                },
                {
                    "line_id": "L2",
                    "sku": "CANDLE-3",
                    "title": "Candles, set of 3",
                    "category": "home_decor",
                    "quantity": 1,
                    "unit_price": {"amount": 1500, "currency": "USD"},
                },
            ],
            "shipping_paid": {"amount": 699, "currency": "USD"},
            "ordered_at": (delivered - timedelta(days=4)).isoformat(),
            "delivered_at": delivered.isoformat(),
            "payment": {"provider": "stripe", "reference": f"pi_demo{uuid.uuid4().hex[:12]}"},
        }
        self.paid = (
            sum(line["unit_price"]["amount"] * line["quantity"] for line in order["lines"])
            + order["shipping_paid"]["amount"]
        )
        step(
            "upstream order system",
            f"order {self.order_id} delivered to {self.buyer['name']}: vase 49.99 + "
            f"candles 15.00 + shipping 6.99 = {self.paid / 100:.2f} USD",
        )
        await self.publish_order(connection, order)

        async def order_known() -> bool:
            response = await self.http.get(
                self.urls["returns"] + f"/v1/orders/{self.order_id}",
                headers=self.headers("agent", "demo-agent", "returns"),
            )
            return response.status_code == 200

        await self.until("the order to reach the returns service", order_known)

        ret = await self.as_buyer(
            "returns",
            "POST",
            "/v1/returns",
            json={
                "order_id": self.order_id,
                "lines": [
                    {
                        "line_id": "L1",
                        "quantity": 1,
                        "reason_code": "DAMAGED_ON_ARRIVAL",
                        "comment": "Cracked along the rim",
                    }
                ],
            },
        )
        rid = ret["return_id"]
        step("buyer", f"asks to return the vase (DAMAGED_ON_ARRIVAL): {rid} is {ret['status']}")
        ret = await self.as_seller(
            "returns",
            "POST",
            f"/v1/returns/{rid}/authorize",
            json={
                "label_type": "prepaid",
                "carrier": "UPS",
                "tracking_number": "1ZDEMO0000000001",
                "label_url": "https://labels.example/1ZDEMO0000000001.pdf",
            },
        )
        step("seller", f"authorizes with a prepaid UPS label: {ret['status']}")
        ret = await self.as_buyer(
            "returns", "POST", f"/v1/returns/{rid}/ship", json={"carrier": "UPS", "tracking_number": "1ZDEMO0000000001"}
        )
        step("buyer", f"ships it: {ret['status']}")
        ret = await self.as_seller(
            "returns",
            "POST",
            f"/v1/returns/{rid}/receive",
            json={"lines": [{"line_id": "L1", "quantity": 1, "condition": "damaged_in_transit"}]},
        )
        step("seller", f"receives it: {ret['status']}; the refunds service refunds automatically")

        async def refunded() -> dict | None:
            current = await self.as_buyer("returns", "GET", f"/v1/returns/{rid}")
            return current if current["status"] == "refunded" else None

        await self.until("the refund", refunded)

        async def emails_sent() -> bool:
            page = await self.as_agent("notifications", "GET", "/v1/notifications", params={"return_id": rid})
            return len(page["items"]) >= 7 and all(n["status"] == "sent" for n in page["items"])

        await self.until("the emails", emails_sent)
        await self.report(rid)

    # ---- what each party saw ----------------------------------------------------------------

    async def report(self, rid: str) -> None:
        buyer_view = await self.as_buyer("returns", "GET", f"/v1/returns/{rid}")
        buyer_refunds = (await self.as_buyer("refunds", "GET", "/v1/refunds", params={"return_id": rid}))["items"]
        section("BUYER: API view (GET /v1/returns/{id}, GET /v1/refunds?return_id=)")
        print(f"  return {rid}: {buyer_view['status']}")
        for entry in buyer_view["timeline"]:
            print(
                f"    {entry['at'][:19]}  {entry['action']:<10} -> {entry['status']:<10} by "
                f"{entry['actor']['role']}:{entry['actor']['id']}"
            )
        for refund in buyer_refunds:
            b = refund["breakdown"]
            print(
                f"  refund {refund['refund_id']}: {refund['status']}, {money(refund['amount'])} via "
                f"{refund['gateway']} ({refund['gateway_reference']})"
            )
            print(
                f"    items {money(b['items'])} - restocking {money(b['restocking_fee'])} + outbound shipping "
                f"{money(b['outbound_shipping'])} + return shipping {money(b['return_shipping_concession'])} "
                f"= {money(b['total'])}"
            )
            print(
                f"  the buyer paid {self.paid / 100:.2f} USD for the order and got {money(refund['amount'])} back "
                "(the candles were kept, so the outbound shipping is not refunded)"
            )

        seller_view = await self.as_seller("returns", "GET", f"/v1/returns/{rid}")
        auth = seller_view["authorization"]
        section("SELLER: API view (GET /v1/returns/{id})")
        print(
            f"  return {rid}: {seller_view['status']}, fault {seller_view['fault']}, "
            f"whole order {seller_view['whole_order']}, in policy {seller_view['in_policy']}"
        )
        print(
            f"  authorization: {auth['label_type']} label, return shipping paid by "
            f"{auth['return_shipping_paid_by']}, ship by {auth['ship_by'][:10]}"
        )
        receipt = [(line["line_id"], line["quantity"], line["condition"]) for line in seller_view["receipt"]["lines"]]
        print(f"  receipt: {receipt}, refund due by {seller_view['refund_due_at'][:19]} UTC")
        print(f"  refund: {money(seller_view['refund']['amount'])} (automatic: {seller_view['refund']['automatic']})")

        section(f"EVENTS on {self.exchange} (temporary queue; type, sequence, subject)")
        mine = [
            e
            for e in self.events
            if e.get("subject") in (rid, self.order_id)
            or (isinstance(e.get("data"), dict) and e["data"].get("return_id") == rid)
        ]
        for event in mine:
            extra = ""
            if event["type"].startswith("notification."):
                extra = f"  [{event['data']['template']} -> {event['data']['recipient_role']}]"
            print(f"  {event['type']:<26} seq {event.get('sequence', 0):<3} {event.get('subject')}{extra}")

        section(f"EMAILS in the SMTP sink's Maildir ({self.maildir}; received at, UTC)")
        roles = {self.buyer["email"]: "buyer", self.seller["email"]: "seller"}
        for received, recipient, subject in self.mails(roles):
            print(f"  {received}  to {roles[recipient]:<6} {subject}")

        metrics = await self.as_seller("metrics", "GET", f"/v1/metrics/sellers/{self.seller['id']}")
        counts = metrics["counts"]
        section("SELLER: metrics (GET /v1/metrics/sellers/{id}, last 30 days)")
        print("  counts: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
        print(f"  refunded: {', '.join(money(m) for m in metrics['refunded'])}")
        print(
            f"  response time p50: {metrics['response_time']['p50_seconds']} s; "
            f"late responses {metrics['late_response']['count']}/{metrics['late_response']['of']}; "
            f"refunds on time {metrics['refund_timeliness']['count']}/{metrics['refund_timeliness']['of']}"
        )
        print(
            f"  dissatisfaction: {metrics['dissatisfaction']['count']}/{metrics['dissatisfaction']['of']} "
            f"(target < {metrics['dissatisfaction']['target']:.0%})"
        )
        print(
            "  top reasons: "
            + ", ".join(f"{r['reason_code']} ({r['fault']}) x{r['returns']}" for r in metrics["top_reasons"])
        )
        print(
            "  SKU return rates: "
            + ", ".join(f"{r['sku']} {r['units_returned']}/{r['units_delivered']}" for r in metrics["sku_return_rates"])
        )

    def mails(self, roles: dict[str, str]) -> list[tuple[str, str, str]]:
        """(received at, recipient, subject) of the sink's messages to these addresses, in arrival order."""
        found = []
        for folder in ("new", "cur"):
            for path in (self.maildir / folder).glob("*"):
                with path.open("rb") as f:
                    message = email.message_from_binary_file(f, policy=email.policy.default)
                rcpts = [r.strip() for r in str(message.get("X-RcptTo", message.get("To", ""))).split(",")]
                for recipient in rcpts:
                    if recipient in roles:
                        found.append((path.stat().st_mtime_ns, recipient, " ".join(str(message["Subject"]).split())))
        return [
            (datetime.fromtimestamp(ns / 1e9, UTC).strftime("%H:%M:%S.%f")[:12], recipient, subject)
            for ns, recipient, subject in sorted(found)
        ]


def section(title: str) -> None:
    print(f"\n== {title}")


def step(who: str, what: str) -> None:
    print(f"  [{who}] {what}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.splitlines()[0])
    parser.add_argument("--returns-url", default=f"http://127.0.0.1:{os.environ.get('RETURNS_PORT', '8001')}")
    parser.add_argument("--refunds-url", default=f"http://127.0.0.1:{os.environ.get('REFUNDS_PORT', '8002')}")
    parser.add_argument(
        "--notifications-url", default=f"http://127.0.0.1:{os.environ.get('NOTIFICATIONS_PORT', '8003')}"
    )
    parser.add_argument("--metrics-url", default=f"http://127.0.0.1:{os.environ.get('METRICS_PORT', '8004')}")
    parser.add_argument("--disputes-url", default=f"http://127.0.0.1:{os.environ.get('DISPUTES_PORT', '8005')}")
    parser.add_argument(
        "--story", choices=("all", "return", "claim", "resolution"), default="all", help="default: all three"
    )
    parser.add_argument("--clock-file", help="the services' CLOCK_FILE (default: CLOCK_FILE, else .local/clock)")
    parser.add_argument("--amqp-url", help="default: AMQP_URL from .local/env")
    parser.add_argument("--exchange", default=os.environ.get("EXCHANGE", "returns.events"))
    parser.add_argument("--orders-exchange", default=os.environ.get("ORDERS_EXCHANGE", "orders.events"))
    parser.add_argument("--maildir", help="default: MAILDIR from .local/env")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each step")
    args = parser.parse_args(argv)
    asyncio.run(Demo(args).run())


if __name__ == "__main__":
    main()
