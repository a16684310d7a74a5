"""A harness for anyone testing against the returns service (its own, e2e, refunds, notifications).

    api = ReturnsApi(httpx_client, secret)              # in-process (ASGI) or a real base_url
    order = await api.put_order(order_data(seller_id="s-9"))
    ret = await api.create_return(order["order_id"], ("L1", 1, "DEFECTIVE"), buyer=order["buyer"]["id"])
    ret = await api.authorize(ret["return_id"], seller=order["seller"]["id"])

Every call checks its status code and answers the parsed JSON. `order_data` delivers on a fixed day
(2025-03-03, the in-process tests' FixedClock); against a service on the system clock pass
`delivered_at=datetime.now(UTC) - timedelta(days=2)`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from shared.tokens import mint
from tests.unit.returns.builders import order_data, request_data, unique

AUDIENCE = "returns"


async def eventually(
    check: Callable[[], Any | Awaitable[Any]], *, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll `check` until it answers something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


class ReturnsApi:
    def __init__(self, client: httpx.AsyncClient, jwt_secret: str, *, issuer: str | None = None) -> None:
        self.client, self.secret, self.issuer = client, jwt_secret, issuer

    def headers(self, role: str, sub: str, acting_for: str | None = None, **extra: str) -> dict[str, str]:
        token = mint(self.secret, role, sub, AUDIENCE, issuer=self.issuer)
        headers = {"Authorization": f"Bearer {token}", **extra}
        if acting_for:
            headers["X-Acting-For"] = acting_for
        return headers

    def as_buyer(self, buyer_id: str) -> dict[str, str]:
        return self.headers("buyer", buyer_id)

    def as_seller(self, seller_id: str) -> dict[str, str]:
        return self.headers("seller", seller_id)

    def as_agent(self, agent_id: str = "agent-1") -> dict[str, str]:
        return self.headers("agent", agent_id)

    def as_service(self, name: str = "orders", acting_for: str | None = None) -> dict[str, str]:
        return self.headers("service", name, acting_for)

    @staticmethod
    def _ok(response: httpx.Response, *statuses: int) -> Any:
        if response.status_code not in statuses:
            raise AssertionError(
                f"{response.request.method} {response.request.url.path} -> {response.status_code}: {response.text}"
            )
        return response.json()

    # ---- orders and policies ------------------------------------------------------------------

    async def put_order(self, order: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.put(f"/v1/orders/{order['order_id']}", json=order, headers=self.as_service())
        return self._ok(response, 200, 201)

    async def put_policy(self, seller_id: str, **policy: Any) -> dict[str, Any]:
        response = await self.client.put(
            f"/v1/sellers/{seller_id}/return-policy", json=policy, headers=self.as_seller(seller_id)
        )
        return self._ok(response, 200)

    # ---- returns ------------------------------------------------------------------------------

    async def create_return(
        self, order_id: str, *lines: tuple[str, int, str], buyer: str = "b-1", key: str | None = None
    ) -> dict[str, Any]:
        headers = self.as_buyer(buyer) | ({"Idempotency-Key": key} if key else {})
        response = await self.client.post("/v1/returns", json=request_data(order_id, *lines), headers=headers)
        created = self._ok(response, 201)
        assert response.headers["ETag"] == f'"{created["version"]}"', response.headers  # a create is versioned too
        return created

    async def get_return(self, return_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.client.get(f"/v1/returns/{return_id}", headers=headers or self.as_agent())
        return self._ok(response, 200)

    async def transition(
        self, return_id: str, action: str, headers: dict[str, str], body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        response = await self.client.post(f"/v1/returns/{return_id}/{action}", json=body or {}, headers=headers)
        return self._ok(response, 200)

    async def authorize(self, return_id: str, *, seller: str = "s-1", **body: Any) -> dict[str, Any]:
        return await self.transition(return_id, "authorize", self.as_seller(seller), body)

    async def reject(self, return_id: str, *, seller: str = "s-1", reason_code: str = "OTHER") -> dict[str, Any]:
        return await self.transition(return_id, "reject", self.as_seller(seller), {"reason_code": reason_code})

    async def close(self, return_id: str, *, buyer: str = "b-1", code: str = "BUYER_WITHDREW") -> dict[str, Any]:
        return await self.transition(return_id, "close", self.as_buyer(buyer), {"code": code})

    async def ship(
        self, return_id: str, *, buyer: str = "b-1", carrier: str = "UPS", tracking_number: str = "1Z999"
    ) -> dict[str, Any]:
        return await self.transition(
            return_id, "ship", self.as_buyer(buyer), {"carrier": carrier, "tracking_number": tracking_number}
        )

    async def receive(
        self, return_id: str, lines: list[tuple[str, int, str]], *, seller: str = "s-1"
    ) -> dict[str, Any]:
        body = {"lines": [{"line_id": i, "quantity": q, "condition": c} for i, q, c in lines]}
        return await self.transition(return_id, "receive", self.as_seller(seller), body)

    async def feedback(self, return_id: str, resolved: bool, *, buyer: str = "b-1") -> dict[str, Any]:
        return await self.transition(return_id, "feedback", self.as_buyer(buyer), {"resolved": resolved})

    async def order_with_return(
        self, *lines: tuple[str, int, str], **order: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A fresh delivered order (builder keywords) and a return requested on it by its buyer."""
        stored = await self.put_order(order_data(**order))
        ret = await self.create_return(stored["order_id"], *lines, buyer=stored["buyer"]["id"])
        return stored, ret


def refund_data(
    ret: dict[str, Any],
    *,
    amount: int | None = None,
    status: str = "issued",
    attempts: int = 1,
    failure_reason: str | None = None,
    at: str | None = None,
    refund_id: str | None = None,
) -> dict[str, Any]:
    """`shared.models.Refund` JSON for a return, as the refunds service would publish it."""
    currency = ret["currency"]
    items = sum(line["unit_price"]["amount"] * line["quantity"] for line in ret["lines"])
    total = {"amount": items if amount is None else amount, "currency": currency}
    zero = {"amount": 0, "currency": currency}
    at = at or ret["updated_at"]
    return {
        "refund_id": refund_id or unique("rf"),
        "kind": "return",
        "return_id": ret["return_id"],
        "order_id": ret["order_id"],
        "marketplace": ret["marketplace"],
        "currency": currency,
        "buyer": ret["buyer"],
        "seller": ret["seller"],
        "status": status,
        "version": 1,
        "amount": total,
        "breakdown": {
            "lines": [],
            "items": total,
            "restocking_fee": zero,
            "outbound_shipping": zero,
            "return_shipping_concession": zero,
            "other_concession": zero,
            "total": total,
        },
        "automatic": False,
        "actor": {"role": "platform", "id": "refunds"},
        "attempts": attempts,
        "failure_reason": failure_reason,
        "issued_at": at if status == "issued" else None,
        "created_at": at,
        "updated_at": at,
    }
