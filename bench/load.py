"""The workload: delivered orders (upstream events), then N returns driven create → authorize →
ship → receive by C concurrent clients; refunds and emails follow asynchronously.

Two kinds of return alternate, so the refund amounts exercise the arithmetic:
  A  seller at fault (DEFECTIVE), the whole one-line order back, sellable
     -> refund = unit price + outbound shipping
  B  buyer at fault (NO_LONGER_NEEDED), one of two lines back, opened, seller's 10 % restocking fee
     -> refund = unit price - round_half_up(10 % of it)
"""

from __future__ import annotations

import asyncio
import json as json_module
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import aio_pika
import aiohttp

from shared.events import new_event
from shared.models import Order
from shared.tokens import mint

RESTOCKING_PERCENT = 10
SHIPPING = 599
TOKEN_TTL = 6 * 3600
OPEN_LOOP_CONNECTIONS = 1024  # per service
# Every email one lifecycle calls for (SPEC §8 and services/notifications/decisions.py), exactly once.
EXPECTED_TEMPLATES = frozenset(
    {
        "buyer/return_requested",
        "seller/new_request",
        "buyer/return_authorized",
        "seller/return_shipped",
        "buyer/item_received",
        "seller/item_received",
        "buyer/refunded",
    }
)
EXPECTED_EVENTS = (
    "return.created",
    "return.authorized",
    "return.shipped",
    "return.received",
    "return.refunded",
    "refund.issued",
)


def half_up_percent(amount: int, percent: int) -> int:
    return int((Decimal(amount) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class Plan:
    """One lifecycle, planned before the run: what to send and what must come out of it."""

    index: int
    run_id: str
    sellers: int
    payment: str

    @property
    def kind(self) -> str:
        return "A" if self.index % 2 == 0 else "B"

    @property
    def order_id(self) -> str:
        return f"o-{self.run_id}-{self.index}"

    @property
    def buyer_id(self) -> str:  # one buyer per order: no abuse flag ever trips
        return f"b-{self.run_id}-{self.index}"

    @property
    def seller_id(self) -> str:
        return seller_id(self.run_id, self.index % self.sellers)

    @property
    def price(self) -> int:
        return 1000 + (self.index * 37) % 9000  # 10.00 .. 99.99, below every high-value cap

    @property
    def expected_refund(self) -> int:
        if self.kind == "A":
            return self.price + SHIPPING
        return self.price - half_up_percent(self.price, RESTOCKING_PERCENT)

    def order(self, delivered_at: datetime) -> dict[str, Any]:
        lines = [
            {
                "line_id": "L1",
                "sku": f"SKU-{self.index % 50}",
                "title": "Mug",
                "category": "kitchen",
                "quantity": 1,
                "unit_price": {"amount": self.price, "currency": "USD"},
            }
        ]
        if self.kind == "B":
            lines.append(
                {
                    "line_id": "L2",
                    "sku": "SKU-LAMP",
                    "title": "Lamp",
                    "category": "home",
                    "quantity": 1,
                    "unit_price": {"amount": 2500, "currency": "USD"},
                }
            )
        return {
            "order_id": self.order_id,
            "marketplace": "US",
            "currency": "USD",
            "buyer": {
                "id": self.buyer_id,
                "name": "Ada Buyer",
                "email": f"{self.buyer_id}@buyers.example",
                "locale": "en",
            },
            "seller": {
                "id": self.seller_id,
                "name": "Sam Seller",
                "email": f"{self.seller_id}@sellers.example",
                "locale": "en",
                "return_address": {"line1": "1 Dock St", "city": "Newark", "postal_code": "07102", "country": "US"},
            },
            "lines": lines,
            "shipping_paid": {"amount": SHIPPING, "currency": "USD"},
            "ordered_at": (delivered_at - timedelta(days=3)).isoformat(),
            "delivered_at": delivered_at.isoformat(),
            "payment": {"provider": self.payment, "reference": f"pi_bench_{self.run_id}_{self.index}"},
        }

    @property
    def reason(self) -> str:
        return "DEFECTIVE" if self.kind == "A" else "NO_LONGER_NEEDED"

    @property
    def condition(self) -> str:
        return "sellable" if self.kind == "A" else "opened"


def seller_id(run_id: str, n: int) -> str:
    return f"s-{run_id}-{n}"


@dataclass
class Outcome:
    plan: Plan
    return_id: str | None = None
    receive_started: float | None = None  # epoch seconds
    receive_done: float | None = None
    error: str | None = None
    retries: int = 0
    late_s: float | None = None  # open loop: how long after its scheduled time the lifecycle started


@dataclass
class Latencies:
    by_endpoint: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))


class Tokens:
    """Tokens minted once per (role, subject, audience): minting is the client's cost, not the server's."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._cache: dict[tuple[str, str, str], dict[str, str]] = {}

    def __call__(self, role: str, sub: str, aud: str) -> dict[str, str]:
        key = (role, sub, aud)
        if key not in self._cache:
            self._cache[key] = {"Authorization": f"Bearer {mint(self.secret, role, sub, aud, ttl=TOKEN_TTL)}"}
        return self._cache[key]


# What a call that got no answer raises: refused, reset, dropped mid-answer or timed out.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, read whole."""

    status_code: int
    text: str

    def json(self) -> Any:
        return json_module.loads(self.text)


class Driver:
    """The clients of the load, one connection pool per service.

    aiohttp, not httpx: on this machine httpx's client used 1.4-2.8 ms of CPU per request against
    aiohttp's 0.25-0.45 ms (bench/RESULTS.md), and the load generator shares the cores it measures.
    """

    def __init__(self, base_urls: dict[str, str], tokens: Tokens, concurrency: int | None) -> None:
        # concurrency None (open loop): connections enough that a request is not held back by the
        # client's pool (the latency measured is the server's), bounded well below the fd limit.
        self.base_urls = base_urls
        self.cap = OPEN_LOOP_CONNECTIONS if concurrency is None else concurrency + 4
        self._session: aiohttp.ClientSession | None = None
        self.tokens = tokens
        self.concurrency = concurrency
        self.latencies = Latencies()

    @property
    def session(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the event loop that runs the calls.
        if self._session is None:
            # Idle connections are dropped before uvicorn's 5 s keep-alive ends (aiohttp keeps them
            # 15 s): reusing one the server is closing at that moment fails with a connection reset.
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.cap, keepalive_timeout=4.0)
            self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120.0))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        label: str,
        *,
        headers: dict[str, str],
        json: Any = None,
        params: dict[str, str] | None = None,
        record: bool = True,
    ) -> Reply:
        began = time.perf_counter()
        url = self.base_urls[service] + path
        async with self.session.request(method, url, json=json, headers=headers, params=params) as response:
            reply = Reply(response.status, await response.text())
        if record:
            self.latencies.by_endpoint[label].append(time.perf_counter() - began)
            self.latencies.statuses[label][reply.status_code] += 1
        return reply

    # ---- set-up ---------------------------------------------------------------------------

    async def put_policies(self, run_id: str, sellers: int) -> None:
        for n in range(sellers):
            sid = seller_id(run_id, n)
            response = await self.call(
                "returns",
                "PUT",
                f"/v1/sellers/{sid}/return-policy",
                "setup",
                headers=self.tokens("seller", sid, "returns"),
                json={"restocking_fee_percent": RESTOCKING_PERCENT, "refund_mode": "auto"},
                record=False,
            )
            if response.status_code >= 400:
                raise RuntimeError(f"policy of {sid}: HTTP {response.status_code}: {response.text[:300]}")

    # ---- one lifecycle --------------------------------------------------------------------

    async def lifecycle(self, plan: Plan) -> Outcome:
        out = Outcome(plan)
        buyer = self.tokens("buyer", plan.buyer_id, "returns")
        seller = self.tokens("seller", plan.seller_id, "returns")
        try:
            body = {"order_id": plan.order_id, "lines": [{"line_id": "L1", "quantity": 1, "reason_code": plan.reason}]}
            headers = buyer | {"Idempotency-Key": f"bench-{plan.run_id}-{plan.index}"}
            for attempt in range(60):
                response = await self.call(
                    "returns", "POST", "/v1/returns", "POST /v1/returns", headers=headers, json=body
                )
                # 422 until the order.delivered event has reached the returns service.
                if response.status_code != 422 or "no delivered order" not in response.text:
                    break
                out.retries += 1
                await asyncio.sleep(0.1 * (attempt + 1))
            ret = _expect(response, 201, "create")
            out.return_id = rid = ret["return_id"]
            _expect(
                await self.call(
                    "returns",
                    "POST",
                    f"/v1/returns/{rid}/authorize",
                    "POST /v1/returns/{id}/authorize",
                    headers=seller,
                    json={},
                ),
                200,
                "authorize",
            )
            _expect(
                await self.call(
                    "returns",
                    "POST",
                    f"/v1/returns/{rid}/ship",
                    "POST /v1/returns/{id}/ship",
                    headers=buyer,
                    json={"carrier": "UPS", "tracking_number": f"1Z{plan.index:08d}"},
                ),
                200,
                "ship",
            )
            out.receive_started = time.time()
            _expect(
                await self.call(
                    "returns",
                    "POST",
                    f"/v1/returns/{rid}/receive",
                    "POST /v1/returns/{id}/receive",
                    headers=seller,
                    json={"lines": [{"line_id": "L1", "quantity": 1, "condition": plan.condition}]},
                ),
                200,
                "receive",
            )
            out.receive_done = time.time()
        except Exception as exc:  # noqa: BLE001 - reported per lifecycle, the run goes on
            out.error = f"{type(exc).__name__}: {exc}"[:500]
        return out

    async def run(self, plans: list[Plan], progress=None) -> list[Outcome]:
        queue: asyncio.Queue[Plan] = asyncio.Queue()
        for plan in plans:
            queue.put_nowait(plan)
        outcomes: list[Outcome] = []

        async def worker() -> None:
            while True:
                try:
                    plan = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                outcomes.append(await self.lifecycle(plan))
                if progress is not None:
                    progress(len(outcomes))

        await asyncio.gather(*(worker() for _ in range(self.concurrency or 1)))
        return outcomes

    async def run_open(self, plans: list[Plan], rate: float, progress=None) -> list[Outcome]:
        """Open loop: lifecycle i starts at t0 + i / rate whatever the earlier ones are doing, so a
        slow answer does not slow the load down. Each records how late it actually started (the
        generator's own lag, when this process cannot keep up)."""
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.05
        tasks: list[asyncio.Task[Outcome]] = []
        finished = [0]

        async def one(plan: Plan, due: float) -> Outcome:
            late = max(0.0, loop.time() - due)
            out = await self.lifecycle(plan)
            out.late_s = late
            finished[0] += 1
            if progress is not None:
                progress(finished[0])
            return out

        for i, plan in enumerate(plans):
            due = t0 + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(plan, due)))
        return list(await asyncio.gather(*tasks))


def _expect(response: Reply, status: int, what: str) -> dict[str, Any]:
    if response.status_code != status:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
    return response.json()


async def publish_orders(amqp_url: str, exchange_name: str, plans: list[Plan], *, window: int = 128) -> float:
    """The upstream order system: one confirmed `order.delivered` per planned order. Returns seconds taken."""
    delivered_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    connection = await aio_pika.connect_robust(amqp_url, client_properties={"connection_name": "bench-orders"})
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        slots = asyncio.Semaphore(window)

        async def one(plan: Plan) -> None:
            order = Order.model_validate(plan.order(delivered_at))
            event = new_event(
                "order.delivered",
                service="orders",
                subject=plan.order_id,
                data=order,
                sequence=1,
                time=datetime.now(UTC),
            )
            async with slots:
                await exchange.publish(
                    aio_pika.Message(
                        event.to_json(),
                        content_type="application/cloudevents+json",
                        message_id=event.id,
                        type=event.type,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key="order.delivered",
                    mandatory=True,
                )

        began = time.perf_counter()
        await asyncio.gather(*(one(plan) for plan in plans))
        return time.perf_counter() - began
    finally:
        await connection.close()
