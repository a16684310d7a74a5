"""A gateway outage ends in `refund.failed` (money reserved is released); an agent's retry pays."""

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
    assert (ledger["reserved"], ledger["refunded"], ledger["available"]) == (0, 0, order.total_paid())
    assert published.of_type("return.refunded") == []

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
    assert (await service.ledger(order.order_id))["refunded"] == refund.amount.amount

    again = await service.http.post(f"/v1/refunds/{refund_id}/retry", headers=service.token("agent", "a-1"))
    assert again.status_code == 409
