"""The disputes service in-process against the real MongoDB-wire server and RabbitMQ, for the
claims and feedback tests (tests/integration/test_disputes_*.py load it as a plugin, the way
tests/integration/returns/conftest.py serves the returns tests).

Each test module gets its own database, queues and exchanges (dropped and deleted afterwards), a
business clock of its own and a tap on its exchange. A module may set `SETTINGS = {...}` to
override settings (short deadlines for the deadline tests). Orders reach the service the way they
do in production: `order.delivered` on the orders exchange (`DisputesApi.deliver`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.disputes.app import create_app
from services.disputes.settings import Settings
from shared.bus import EventBus
from shared.clock import FixedClock
from shared.events import CloudEvent, new_event
from shared.models import Order
from shared.tokens import mint
from tests.integration.module_isolation import cleanup, isolated_settings
from tests.integration.returns.factories import eventually
from tests.integration.returns.tap import EventTap
from tests.unit.returns.builders import order_data, unique

JWT_SECRET = "disputes-integration-secret-" + "x" * 40
T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
DISPUTES = "/services/disputes"


class DisputesTap(EventTap):
    """The tap, reading the disputes service's events. Delivery is at least once (a relay whose
    lease ran out under load publishes again, with the same event id) and consumers dedupe by id:
    so does the tap. Two different events of one kind still show as two."""

    def of(self, subject: str, source: str = DISPUTES) -> list[CloudEvent]:
        return list({event.id: event for event in super().of(subject, source)}.values())

    def types(self, subject: str) -> list[str]:
        return [e.type for e in self.of(subject)]


class DisputesApi:
    """Calls as a buyer, seller, agent or service; `deliver` feeds an order through the broker."""

    def __init__(self, client: httpx.AsyncClient, upstream: EventBus, settings: Settings, db: Any) -> None:
        self.client, self.upstream, self.settings, self.db = client, upstream, settings, db

    def headers(self, role: str, sub: str, acting_for: str | None = None, **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {mint(JWT_SECRET, role, sub, 'disputes')}", **extra}
        if acting_for:
            headers["X-Acting-For"] = acting_for
        return headers

    def as_buyer(self, buyer_id: str, **extra: str) -> dict[str, str]:
        return self.headers("buyer", buyer_id, **extra)

    def as_seller(self, seller_id: str) -> dict[str, str]:
        return self.headers("seller", seller_id)

    def as_agent(self, agent_id: str = "agent-1") -> dict[str, str]:
        return self.headers("agent", agent_id)

    @staticmethod
    def ok(response: httpx.Response, *statuses: int) -> Any:
        if response.status_code not in statuses:
            raise AssertionError(
                f"{response.request.method} {response.request.url.path} -> {response.status_code}: {response.text}"
            )
        return response.json()

    async def publish(self, event_type: str, data: Any, subject: str, *, sequence: int = 1) -> None:
        event = new_event(event_type, service="test-upstream", subject=subject, data=data, sequence=sequence, time=T0)
        exchange = self.settings.orders_exchange if event_type.startswith("order.") else self.settings.exchange
        await self.upstream.publish(event, exchange=exchange)

    async def deliver(self, *, ordered_days_ago: int = 20, **order: Any) -> Order:
        """A fresh order (returns builders' keywords), delivered three days after it was placed,
        `ordered_days_ago` days before the module's clock started; answers once the service has it."""
        delivered = T0 - timedelta(days=ordered_days_ago - 3)
        values = {"buyer_id": unique("b"), "seller_id": unique("s")} | order
        snapshot = Order.model_validate(order_data(delivered_at=delivered, **values))
        await self.publish("order.delivered", snapshot, snapshot.order_id)
        await eventually(
            lambda: self.db.order_facts.find_one({"_id": snapshot.order_id, "order": {"$exists": True}}),
            what=f"order {snapshot.order_id} in the disputes service",
        )
        return snapshot

    async def file(self, order: Order, amount: int = 1500, *, key: str | None = None, **body: Any) -> dict[str, Any]:
        headers = self.as_buyer(order.buyer.id) | ({"Idempotency-Key": key} if key else {})
        request = {"order_id": order.order_id, "reason": "ITEM_NOT_RECEIVED"} | body
        request["amount"] = {"amount": amount, "currency": order.currency}
        return self.ok(await self.client.post("/v1/claims", json=request, headers=headers), 201)

    async def act(self, claim_id: str, action: str, headers: dict[str, str], **body: Any) -> httpx.Response:
        return await self.client.post(f"/v1/claims/{claim_id}/{action}", json=body, headers=headers)

    async def get(self, claim_id: str) -> dict[str, Any]:
        return self.ok(await self.client.get(f"/v1/claims/{claim_id}", headers=self.as_agent()), 200)

    @staticmethod
    def claim_refund(
        claim: dict[str, Any], *, status: str = "issued", amount: int | None = None, **changes: Any
    ) -> dict:
        """`shared.models.Refund` JSON of a claim's refund, as the refunds service publishes it."""
        total = {"amount": claim["payment"]["amount"]["amount"] if amount is None else amount, "currency": "USD"}
        zero = {"amount": 0, "currency": "USD"}
        at = (T0 + timedelta(hours=1)).isoformat()
        seller = claim["seller"] | {
            "return_address": {"line1": "1 Dock St", "city": "X", "postal_code": "1", "country": "US"}
        }
        return {
            "refund_id": claim["payment"]["refund_id"],
            "kind": "claim",
            "claim_id": claim["claim_id"],
            "order_id": claim["order_id"],
            "marketplace": claim["marketplace"],
            "currency": claim["currency"],
            "buyer": claim["buyer"],
            "seller": seller,
            "status": status,
            "version": 2,
            "amount": total,
            "breakdown": {
                "items": zero,
                "restocking_fee": zero,
                "outbound_shipping": zero,
                "return_shipping_concession": zero,
                "other_concession": total,
                "total": total,
            },
            "actor": {"role": "platform", "id": "refunds"},
            "attempts": 1,
            "issued_at": at if status == "issued" else None,
            "created_at": at,
            "updated_at": at,
        } | changes


@pytest.fixture(scope="module")
def disputes_settings(request: pytest.FixtureRequest, amqp_url: str, mongodb_url: str) -> Settings:
    """This module's own database, queues and exchanges, so nobody else's events meet ours."""
    values = isolated_settings(request, amqp_url, mongodb_url, JWT_SECRET)
    return Settings(**(values | getattr(request.module, "SETTINGS", {})))


@pytest.fixture(scope="module")
def disputes_clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture(scope="module")
async def disputes_tap(disputes_settings: Settings) -> AsyncIterator[DisputesTap]:
    tap = DisputesTap(disputes_settings.amqp_url, disputes_settings.exchange)
    await tap.start()
    yield tap
    await tap.close()


@pytest.fixture(scope="module")
async def disputes_app(
    disputes_settings: Settings, disputes_clock: FixedClock, disputes_tap: DisputesTap, mongo_client: Any
) -> AsyncIterator[Any]:
    app = create_app(disputes_settings, disputes_clock)
    try:
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as _:
            yield app
    finally:
        await cleanup(disputes_settings, mongo_client)


@pytest.fixture(scope="module")
def disputes_db(disputes_app: Any, disputes_settings: Settings, mongo_client: Any) -> Any:
    """The service's database through the test's own client (not held to shared/query_shapes/)."""
    return mongo_client[disputes_settings.database_name]


@pytest.fixture(scope="module")
async def disputes_upstream(disputes_settings: Settings) -> AsyncIterator[EventBus]:
    """A publish-only bus: the order system, returns and refunds as the disputes service sees them."""
    bus = EventBus(disputes_settings.amqp_url, "test-upstream", exchange=disputes_settings.exchange)
    await bus.connect()
    yield bus
    await bus.close()


@pytest.fixture(scope="module")
async def claims_api(
    disputes_app: Any, disputes_upstream: EventBus, disputes_settings: Settings, disputes_db: Any
) -> AsyncIterator[DisputesApi]:
    transport = httpx.ASGITransport(app=disputes_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://disputes") as client:
        yield DisputesApi(client, disputes_upstream, disputes_settings, disputes_db)
