"""Orders, requests and returns built by hand for the returns tests (unit, integration, e2e)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.returns.policy import MarketplaceRules, SellerPolicy, default_policy
from services.returns.schemas import ReturnRequest
from shared.calendar import marketplace_country
from shared.models import Actor, Order

# Delivered Monday 2025-03-03 at 15:00 New York time (20:00 UTC): day D of the US window.
DELIVERED = datetime(2025, 3, 3, 20, 0, tzinfo=UTC)
BUYER = Actor(role="buyer", id="b-1")
SELLER = Actor(role="seller", id="s-1")
RULES = MarketplaceRules(
    non_returnable_categories=frozenset({"gift_cards", "digital_content"}),
    high_value_cap={"USD": 50000, "JPY": 60000},
    default_return_postage={"USD": 899, "JPY": 1000},
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def order_data(
    *,
    order_id: str | None = None,
    buyer_id: str = "b-1",
    seller_id: str = "s-1",
    marketplace: str = "US",
    currency: str = "USD",
    return_country: str | None = None,
    delivered_at: datetime = DELIVERED,
    lines: list[dict[str, Any]] | None = None,
    shipping: int = 599,
) -> dict[str, Any]:
    """The JSON of an `order.delivered` snapshot (also the body of `PUT /v1/orders/{id}`)."""
    lines = lines or [
        {
            "line_id": "L1",
            "sku": "SKU-MUG",
            "title": "Mug",
            "category": "kitchen",
            "quantity": 3,
            "unit_price": {"amount": 1500, "currency": currency},
        },
        {
            "line_id": "L2",
            "sku": "SKU-LAMP",
            "title": "Lamp",
            "category": "home",
            "quantity": 1,
            "unit_price": {"amount": 4999, "currency": currency},
        },
    ]
    for line in lines:
        line.setdefault("unit_price", {"amount": 1000, "currency": currency})
        line.setdefault("sku", f"SKU-{line['line_id']}")
        line.setdefault("title", f"Item {line['line_id']}")
        line.setdefault("category", "kitchen")
        line.setdefault("quantity", 1)
    return {
        "order_id": order_id or unique("o"),
        "marketplace": marketplace,
        "currency": currency,
        "buyer": {"id": buyer_id, "name": "Ada Buyer", "email": f"{buyer_id}@buyers.example", "locale": "en"},
        "seller": {
            "id": seller_id,
            "name": "Sam Seller",
            "email": f"{seller_id}@sellers.example",
            "locale": "en",
            "return_address": {
                "line1": "1 Dock St",
                "city": "Newark",
                "postal_code": "07102",
                "country": return_country or _country(marketplace),
            },
        },
        "lines": lines,
        "shipping_paid": {"amount": shipping, "currency": currency},
        "ordered_at": (delivered_at - timedelta(days=3)).isoformat(),
        "delivered_at": delivered_at.isoformat(),
        "payment": {"provider": "stripe", "reference": "pi_test_123"},
    }


def _country(marketplace: str) -> str:
    return marketplace_country(marketplace)  # the marketplace's own country: domestic returns


def make_order(**kwargs: Any) -> Order:
    return Order.model_validate(order_data(**kwargs))


def request_data(order_id: str, *lines: tuple[str, int, str]) -> dict[str, Any]:
    """`POST /v1/returns` body: lines as (line_id, quantity, reason_code)."""
    lines = lines or (("L1", 1, "NO_LONGER_NEEDED"),)
    return {
        "order_id": order_id,
        "lines": [
            {"line_id": line_id, "quantity": quantity, "reason_code": reason} for line_id, quantity, reason in lines
        ],
    }


def make_request(order: Order, *lines: tuple[str, int, str], policy_exception: bool = False) -> ReturnRequest:
    return ReturnRequest.model_validate(request_data(order.order_id, *lines) | {"policy_exception": policy_exception})


def policy(**changes: Any) -> SellerPolicy:
    return default_policy(RULES).model_copy(update=changes)
