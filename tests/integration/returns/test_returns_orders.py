"""Order snapshots are validated at the door, over HTTP and from the orders exchange: an implausible
one is refused (problem+json naming the field) or parked, and nothing is stored or announced."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.returns.factories import order_data, unique

pytestmark = pytest.mark.integration


def at(path: str, value: Any):
    """A change to the snapshot: set `lines.0.unit_price.amount` (dotted, indexes as numbers)."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value

    return change


BAD_SNAPSHOTS = [
    (at("lines.0.unit_price.amount", -2599), "lines[0].unit_price.amount"),
    (at("lines.1.unit_price.currency", "EUR"), "lines[1].unit_price.currency"),
    (at("currency", "ZZZ"), "currency"),
    (at("delivered_at", "2025-02-01T00:00:00+00:00"), "delivered_at"),  # before ordered_at
    (at("ordered_at", "2025-02-28T20:00:00"), "ordered_at"),  # naive
    (at("ordered_at", "0001-01-01T00:00:00+00:00"), "ordered_at"),
    (at("delivered_at", "9999-12-31T23:59:59+00:00"), "delivered_at"),
    (at("lines.0.unit_price.amount", 2**63), "lines[0].unit_price.amount"),
    (at("lines.0.quantity", 2**63), "lines[0].quantity"),
    (at("shipping_paid.amount", 2**64), "shipping_paid.amount"),
]


@pytest.mark.parametrize(("spoil", "field"), BAD_SNAPSHOTS)
async def test_put_order_refuses_an_implausible_snapshot_and_stores_nothing(api, returns_app, returns_db, spoil, field):
    data = order_data(buyer_id=unique("b"))
    spoil(data)
    response = await api.client.put(f"/v1/orders/{data['order_id']}", json=data, headers=api.as_service())

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]], response.json()
    assert await returns_db.orders.find_one({"_id": data["order_id"]}) is None


async def test_a_stored_order_is_not_overwritten_by_an_implausible_one(api):
    good = await api.put_order(order_data(buyer_id=unique("b")))
    spoiled = good | {"lines": [good["lines"][0] | {"unit_price": {"amount": -1, "currency": "USD"}}]}
    response = await api.client.put(f"/v1/orders/{good['order_id']}", json=spoiled, headers=api.as_service())
    assert response.status_code == 422
    stored = await api.client.get(f"/v1/orders/{good['order_id']}", headers=api.as_agent())
    assert stored.json()["lines"] == good["lines"]


async def test_an_implausible_order_delivered_is_parked_and_stores_nothing(returns_db, deliver_parked):
    data = order_data(buyer_id=unique("b"))
    at("lines.0.unit_price.amount", -2599)(data)
    letter = await deliver_parked(data)
    assert "ValidationError" in letter.error
    assert await returns_db.orders.find_one({"_id": data["order_id"]}) is None
