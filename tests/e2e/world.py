"""The marketplace's people and orders, as the e2e scenarios drive them: only through public interfaces.

`World(stack)` makes fresh parties (unique ids and email addresses, so each scenario's effects are
its own) and delivered orders; `Party` calls the APIs with a token of its role.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.e2e.harness import Stack, eventually

NEW_YORK = ZoneInfo("America/New_York")


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def long_day(at: datetime | str, zone: ZoneInfo = NEW_YORK) -> str:
    """`December 4, 2025`: how the emails write a date (the reader's zone, en)."""
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    local = moment.astimezone(zone)
    return f"{local:%B} {local.day}, {local.year}"


def dollars(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


class ApiError(AssertionError):
    pass


def ok(response: httpx.Response, *expected: int) -> Any:
    statuses = expected or (200, 201)
    if response.status_code not in statuses:
        raise ApiError(
            f"{response.request.method} {response.request.url.path} -> {response.status_code} "
            f"(wanted {statuses}): {response.text[:800]}"
        )
    return response.json() if response.content else None


@dataclass
class Party:
    """A buyer, seller, agent or service calling the platform with its own token."""

    stack: Stack
    role: str
    id: str
    name: str = ""
    email: str = ""
    replica: int = 0

    def headers(self, aud: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stack.token(self.role, self.id, aud)}", **extra}

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return await self.stack.http(service, self.replica).request(
            method, path, json=json, params=params, headers=self.headers(service, **(headers or {}))
        )

    # returns
    async def get_return(self, return_id: str) -> dict[str, Any]:
        return ok(await self.call("returns", "GET", f"/v1/returns/{return_id}"), 200)

    async def request_return(
        self, order_id: str, lines: list[dict[str, Any]], *, key: str | None = None, **extra: Any
    ) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else None
        return await self.call(
            "returns", "POST", "/v1/returns", json={"order_id": order_id, "lines": lines, **extra}, headers=headers
        )

    async def act(self, return_id: str, action: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.call("returns", "POST", f"/v1/returns/{return_id}/{action}", json=body)

    async def put_policy(self, policy: dict[str, Any]) -> dict[str, Any]:
        return ok(await self.call("returns", "PUT", f"/v1/sellers/{self.id}/return-policy", json=policy), 200)

    # refunds
    async def refunds_of_return(self, return_id: str) -> list[dict[str, Any]]:
        return ok(await self.call("refunds", "GET", "/v1/refunds", params={"return_id": return_id}), 200)["items"]

    # metrics
    async def seller_metrics(self, seller_id: str | None = None) -> dict[str, Any]:
        return ok(await self.call("metrics", "GET", f"/v1/metrics/sellers/{seller_id or self.id}"), 200)

    async def buyer_metrics(self, buyer_id: str | None = None) -> dict[str, Any]:
        return ok(await self.call("metrics", "GET", f"/v1/metrics/buyers/{buyer_id or self.id}"), 200)

    # notifications
    async def notifications(self, **params: str) -> list[dict[str, Any]]:
        return ok(await self.call("notifications", "GET", "/v1/notifications", params={"limit": 200, **params}), 200)[
            "items"
        ]


class World:
    """Fresh parties and delivered orders for one scenario."""

    def __init__(self, stack: Stack, tag: str) -> None:
        self.stack, self.tag = stack, f"{tag}-{uuid.uuid4().hex[:6]}"
        self.agent = Party(stack, "agent", f"agent-{self.tag}")
        self._orders = 0

    def buyer(self, name: str = "Ada Buyer") -> Party:
        uid = uuid.uuid4().hex[:6]
        return Party(
            self.stack,
            "buyer",
            f"b-{self.tag}-{uid}",
            name=f"{name} {uid}",
            email=f"buyer.{self.tag}.{uid}@buyers.example",
        )

    def seller(self, name: str = "Bright Goods") -> Party:
        uid = uuid.uuid4().hex[:6]
        return Party(
            self.stack,
            "seller",
            f"s-{self.tag}-{uid}",
            name=f"{name} {uid}",
            email=f"seller.{self.tag}.{uid}@sellers.example",
        )

    def order(
        self,
        buyer: Party,
        seller: Party,
        lines: list[tuple[str, str, str, int, int]],
        *,
        shipping: int,
        delivered_at: datetime | None = None,
        days_ago: int = 2,
    ) -> dict[str, Any]:
        """A delivered US order; lines are (line_id, title, category, quantity, unit price in cents)."""
        self._orders += 1
        order_id = f"o-{self.tag}-{self._orders}"
        now = self.stack.now()
        if delivered_at is None:
            # Noon, New York time, `days_ago` local days ago: day counts don't depend on the hour.
            day = now.astimezone(NEW_YORK).date() - timedelta(days=days_ago)
            delivered_at = datetime.combine(day, time(12), tzinfo=NEW_YORK)
        return {
            "order_id": order_id,
            "marketplace": "US",
            "currency": "USD",
            "buyer": {"id": buyer.id, "name": buyer.name, "email": buyer.email, "locale": "en"},
            "seller": {
                "id": seller.id,
                "name": seller.name,
                "email": seller.email,
                "locale": "en",
                "return_address": {
                    "name": seller.name,
                    "line1": "1 Dock Street",
                    "city": "Newark",
                    "region": "NJ",
                    "postal_code": "07102",
                    "country": "US",
                },
            },
            "lines": [
                {
                    "line_id": line_id,
                    "sku": f"SKU-{self.tag}-{line_id}",
                    "title": title,
                    "category": category,
                    "quantity": quantity,
                    "unit_price": usd(price),
                }
                for line_id, title, category, quantity, price in lines
            ],
            "shipping_paid": usd(shipping),
            "ordered_at": (delivered_at - timedelta(days=3)).isoformat(),
            "delivered_at": delivered_at.isoformat(),
            "payment": {"provider": "stripe", "reference": f"pi_{uuid.uuid4().hex[:16]}"},
        }

    async def deliver(self, order: dict[str, Any]) -> dict[str, Any]:
        """Publish `order.delivered` as the upstream order system does; wait until returns has it."""
        await self.stack.publish_order(order)
        path = f"/v1/orders/{order['order_id']}"

        async def known() -> bool:
            return (await self.agent.call("returns", "GET", path)).status_code == 200

        await eventually(known, what=f"order {order['order_id']} in the returns service")
        return order


def total_paid(order: dict[str, Any]) -> int:
    return (
        sum(line["unit_price"]["amount"] * line["quantity"] for line in order["lines"])
        + order["shipping_paid"]["amount"]
    )
