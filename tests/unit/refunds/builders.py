"""Orders and returns as the refunds service receives them (unit and integration tests)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.refunds.policy import came_back, outbound_carrier
from services.returns.policy import DEFAULT_RULES, fault_of, restocking_fee_percent
from shared.calendar import add_business_days
from shared.models import ItemCondition, Order, PolicySnapshot, ReasonCode, Return
from shared.money import Money

# Received Friday 2025-07-03 at 15:00 New York time: Friday 4 July is a US holiday.
RECEIVED = datetime(2025, 7, 3, 19, 0, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def money(amount: int, currency: str = "USD") -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def order_data(
    *,
    order_id: str | None = None,
    currency: str = "USD",
    marketplace: str = "US",
    lines: list[tuple[str, int, int]] | None = None,
    shipping: int = 599,
    provider: str = "stripe",
    reference: str = "pi_test_123",
    seller_id: str = "s-1",
    buyer_id: str = "b-1",
) -> dict[str, Any]:
    """`order.delivered` data; lines as (line_id, quantity, unit price in minor units)."""
    lines = lines or [("L1", 3, 1500), ("L2", 1, 4999)]
    return {
        "order_id": order_id or unique("o"),
        "marketplace": marketplace,
        "currency": currency,
        "buyer": {"id": buyer_id, "name": "Ada Buyer", "email": f"{buyer_id}@buyers.example"},
        "seller": {
            "id": seller_id,
            "name": "Sam Seller",
            "email": f"{seller_id}@sellers.example",
            "return_address": {"line1": "1 Dock St", "city": "Newark", "postal_code": "07102", "country": "US"},
        },
        "lines": [
            {
                "line_id": line_id,
                "sku": f"SKU-{line_id}",
                "title": f"Item {line_id}",
                "category": "home",
                "quantity": quantity,
                "unit_price": money(price, currency),
            }
            for line_id, quantity, price in lines
        ],
        "shipping_paid": money(shipping, currency),
        "ordered_at": (RECEIVED - timedelta(days=12)).isoformat(),
        "delivered_at": (RECEIVED - timedelta(days=9)).isoformat(),
        "payment": {"provider": provider, "reference": reference},
    }


def make_order(**kwargs: Any) -> Order:
    return Order.model_validate(order_data(**kwargs))


def return_data(
    order: Order,
    *lines: tuple[str, int, str],
    received: list[tuple] | None = None,
    refund_mode: str = "auto",
    restocking: str | int = 0,
    whole_order: bool = False,
    label: str | None = "prepaid",
    paid_by: str | None = None,
    postage: int | None = None,
    insured_postage: int | None = None,
    returnless: bool = False,
    return_id: str | None = None,
    version: int = 5,
    status: str = "received",
    received_at: datetime = RECEIVED,
    refund_due_at: datetime | None = None,
) -> dict[str, Any]:
    """`return.received` data, as the returns service makes it. Lines as (line_id, quantity, reason);
    `received` as (line_id, quantity, condition) or (line_id, quantity, condition, restocking fee
    percent), by default everything came back sellable. Without a percent, the one the returns
    service would put there (its rule, with the policy's `restocking`). `refund_due_at` is the
    returns service's deadline: by default two business days of the marketplace after receipt.
    `insured_postage`: the authorization's `insured_return_postage` (return-shipping insurance)."""
    lines = lines or (("L1", 1, "NO_LONGER_NEEDED"),)
    fault_by_line = {line_id: fault_of(ReasonCode(reason)) for line_id, _, reason in lines}
    return_lines = []
    for line_id, quantity, reason in lines:
        line = order.line(line_id)
        assert line is not None, line_id
        return_lines.append(
            {
                "line_id": line_id,
                "sku": line.sku,
                "title": line.title,
                "category": line.category,
                "unit_price": line.unit_price.model_dump(),
                "quantity": quantity,
                "reason_code": reason,
                "fault": fault_by_line[line_id].value,
            }
        )
    fault = "seller" if any(line["fault"] == "seller" for line in return_lines) else "buyer"
    policy = PolicySnapshot(refund_mode=refund_mode, restocking_fee_percent=Decimal(str(restocking)))
    if received is None and not returnless:
        received = [(line_id, quantity, "sellable") for line_id, quantity, _ in lines]

    def received_line(line_id: str, quantity: int, condition: str, percent: Any = None) -> dict[str, Any]:
        if percent is None:
            percent = restocking_fee_percent(fault_by_line[line_id], ItemCondition(condition), policy, DEFAULT_RULES)
        return {
            "line_id": line_id,
            "quantity": quantity,
            "condition": condition,
            "restocking_fee_percent": str(Decimal(str(percent))),
        }

    authorization = {
        "label_type": None if returnless else label,
        "return_shipping_paid_by": paid_by or fault,
        "returnless": returnless,
        "return_postage": None if postage is None else money(postage, order.currency),
        "insured_return_postage": None if insured_postage is None else money(insured_postage, order.currency),
    }
    return {
        "return_id": return_id or unique("ret"),
        "order_id": order.order_id,
        "marketplace": order.marketplace,
        "currency": order.currency,
        "status": status,
        "version": version,
        "buyer": order.buyer.model_dump(mode="json"),
        "seller": order.seller.model_dump(mode="json"),
        "lines": return_lines,
        "fault": fault,
        "in_policy": True,
        "policy": policy.model_dump(mode="json"),
        "whole_order": whole_order,
        "created_at": (received_at - timedelta(days=5)).isoformat(),
        "updated_at": received_at.isoformat(),
        "response_due_at": (received_at - timedelta(days=3)).isoformat(),
        "authorized_at": (received_at - timedelta(days=4)).isoformat(),
        "received_at": None if returnless else received_at.isoformat(),
        "refund_due_at": None
        if returnless
        else (refund_due_at or add_business_days(received_at, 2, order.marketplace)).isoformat(),
        "authorization": authorization,
        "receipt": None if returnless else {"lines": [received_line(*entry) for entry in received or []]},
    }


def make_return(order: Order, *lines: tuple[str, int, str], **kwargs: Any) -> Return:
    return Return.model_validate(return_data(order, *lines, **kwargs))


def carried(order: Order, ret: Return) -> Money:
    """The outbound shipping `ret`'s refund carries when it is the order's only return."""
    if outbound_carrier(order, [came_back(ret)]) == ret.return_id:
        return order.shipping_paid
    return Money.zero(order.currency)
