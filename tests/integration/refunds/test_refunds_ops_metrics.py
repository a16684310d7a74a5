"""`returns_platform_refunds_paid_total{currency}` and `..._refunded_minor_units_total{currency}`:
counted once per refund paid, with its amount; a refund refused pays and counts nothing."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

pytestmark = pytest.mark.integration


def sample(name: str, currency: str) -> float:
    return REGISTRY.get_sample_value(name, {"currency": currency}) or 0.0


async def test_a_paid_refund_is_counted_once_with_its_amount(service, stripe_stub):
    paid, amount = (
        sample("returns_platform_refunds_paid_total", "USD"),
        sample("returns_platform_refunded_minor_units_total", "USD"),
    )
    order = await service.delivered(lines=[("L1", 2, 1000)], shipping=500)
    body = {"order_id": order.order_id, "lines": [{"line_id": "L1", "quantity": 2}]}
    headers = service.token("seller", "s-1") | {"Idempotency-Key": "ops-1"}
    first = await service.http.post("/v1/refunds", json=body, headers=headers)
    again = await service.http.post("/v1/refunds", json=body, headers=headers)  # a retried request
    assert first.status_code == again.status_code == 201 and first.json()["status"] == "issued"
    refused = await service.http.post(
        "/v1/refunds", json=body, headers=service.token("seller", "s-1") | {"Idempotency-Key": "ops-2"}
    )
    assert refused.status_code == 422  # beyond what was paid
    assert sample("returns_platform_refunds_paid_total", "USD") == paid + 1
    assert sample("returns_platform_refunded_minor_units_total", "USD") == amount + 2000
