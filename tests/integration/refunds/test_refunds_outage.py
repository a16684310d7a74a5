"""A gateway outage ends in `refund.failed`; the amount stays held in the order's cap (the gateway may
have paid); an agent's retry asks the gateway first, then pays."""

from __future__ import annotations

import pytest

from services.refunds.domain import return_refund_id
from shared.models import Refund
from tests.unit.refunds.builders import make_return

pytestmark = pytest.mark.integration


async def test_gateway_outage_ends_in_refund_failed_and_a_later_retry_succeeds(
    service, published, stripe_stub, wait_until
):
    order = await service.delivered(lines=[("L1", 1, 2500)], shipping=0)
    ret = make_return(order, ("L1", 1, "DEFECTIVE"))
    refund_id = return_refund_id(ret.return_id)
    stripe_stub.mode = "unavailable"
    await service.send("return.received", ret)

    await wait_until(lambda: published.of_type("refund.failed", refund_id), message="no refund.failed")
    failed = Refund.model_validate(published.of_type("refund.failed")[0].data)
    budget = 1 + len(service.settings.gateway_retry_delays_ms)
    assert (failed.status, failed.attempts) == ("failed", budget)
    assert "HTTP 503" in failed.failure_reason
    assert [c.idempotency_key for c in stripe_stub.posts()] == [refund_id] * budget  # retries reuse the key
    ledger = await service.ledger(order.order_id)
    # Still held: Stripe may have paid one of those calls, so nothing may be paid in its place.
    assert (ledger["reserved"], ledger["refunded"], ledger["available"]) == (2500, 0, order.total_paid() - 2500)
    assert published.of_type("return.refunded") == []
    direct = {"order_id": order.order_id, "lines": [{"line_id": "L1", "quantity": 1}]}
    headers = service.token("seller", "s-1") | {"Idempotency-Key": "k-direct"}
    refused = await service.http.post("/v1/refunds", json=direct, headers=headers)
    assert refused.status_code == 422 and refused.json()["available"]["amount"] == 0

    seller_retry = await service.http.post(f"/v1/refunds/{refund_id}/retry", headers=service.token("seller", "s-1"))
    assert seller_retry.status_code == 403  # retrying is for support agents

    stripe_stub.mode = "ok"
    calls_before = len(stripe_stub.calls)
    retried = await service.http.post(f"/v1/refunds/{refund_id}/retry", headers=service.token("agent", "a-1"))
    assert retried.status_code == 200, retried.text
    refund = Refund.model_validate(retried.json())
    assert (refund.status, refund.amount.amount, refund.gateway_reference) == ("issued", 2500, "re_stub_1")
    new_calls = stripe_stub.calls[calls_before:]
    # The new round first asks whether an earlier one paid after all, then pays under a new key.
    assert [c.method for c in new_calls] == ["GET", "POST"]
    assert new_calls[1].idempotency_key not in (None, refund_id)
    await wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"]) == (refund.amount.amount, 0)

    again = await service.http.post(f"/v1/refunds/{refund_id}/retry", headers=service.token("agent", "a-1"))
    assert again.status_code == 409


async def test_a_failed_refund_the_gateway_may_have_paid_is_retried_by_an_agent_not_replaced(
    service, stripe_stub, wait_until
):
    order = await service.delivered(lines=[("L1", 2, 1500)], shipping=0)
    ret = make_return(order, ("L1", 2, "DEFECTIVE"), refund_mode="manual")
    event = await service.send("return.received", ret)
    await wait_until(lambda: service.handled(event.id), message="return.received not handled")
    seller = service.token("seller", "s-1")

    stripe_stub.mode = "unavailable"
    one = {"return_id": ret.return_id, "lines": [{"line_id": "L1", "quantity": 1}]}
    first = await service.http.post("/v1/refunds", json=one, headers=seller | {"Idempotency-Key": "k-1"})
    assert first.json()["status"] == "failed", first.text
    ledger = await service.ledger(order.order_id)
    assert (ledger["reserved"], ledger["available"]) == (1500, 1500)  # held: the gateway may have paid

    # Another amount in its place could be paid on top of what the gateway did pay: refused.
    stripe_stub.mode = "ok"
    both = {"return_id": ret.return_id, "lines": [{"line_id": "L1", "quantity": 2}]}
    second = await service.http.post("/v1/refunds", json=both, headers=seller | {"Idempotency-Key": "k-2"})
    assert second.status_code == 409 and "retry" in second.json()["detail"]
    retried = await service.http.post(
        f"/v1/refunds/{first.json()['refund_id']}/retry", headers=service.token("agent", "a-1")
    )
    assert (retried.json()["status"], retried.json()["amount"]["amount"]) == ("issued", 1500)
    ledger = await service.ledger(order.order_id)
    assert (ledger["reserved"], ledger["refunded"], ledger["available"]) == (0, 1500, 1500)
