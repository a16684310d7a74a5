"""The Stripe adapter (official SDK) against stripe-mock, Stripe's own mock of its API."""

from __future__ import annotations

import os

import pytest

from services.refunds.gateways import GatewayDeclined, GatewayRefund, GatewayUnavailable
from services.refunds.gateways.stripe_gateway import StripeGateway
from shared.models import Refund
from shared.money import Money
from tests.unit.refunds.builders import make_return

pytestmark = pytest.mark.integration

STRIPE_MOCK = os.environ.get("STRIPE_API_BASE", "http://127.0.0.1:12111")


@pytest.fixture
def stripe_base() -> str:
    return STRIPE_MOCK


def request(reference: str = "pi_123", key: str = "rf_test") -> GatewayRefund:
    return GatewayRefund(
        refund_id="rf_test",
        idempotency_key=key,
        payment_reference=reference,
        amount=Money(amount=1999, currency="USD"),
        order_id="o-1",
        return_id="ret-1",
    )


@pytest.mark.parametrize("reference", ["pi_123", "ch_123"])
async def test_refund_through_the_sdk(reference):
    gateway = StripeGateway("sk_test_123", STRIPE_MOCK, timeout_s=5)
    try:
        assert (await gateway.refund(request(reference))).startswith("re_")
        assert await gateway.find(request(reference)) is None  # no refund carries our refund id
    finally:
        await gateway.close()


async def test_a_refused_key_is_declined_and_a_dead_gateway_unavailable(stripe_stub):
    rejected = StripeGateway("not-a-key", STRIPE_MOCK, timeout_s=5)
    dead = StripeGateway("sk_test_123", "http://127.0.0.1:9", timeout_s=2)
    stripe_stub.mode = "unavailable"
    down = StripeGateway("sk_test_123", stripe_stub.url, timeout_s=2)
    try:
        with pytest.raises(GatewayDeclined):
            await rejected.refund(request())
        with pytest.raises(GatewayUnavailable):
            await dead.refund(request())
        with pytest.raises(GatewayUnavailable):
            await down.refund(request())
    finally:
        for gateway in (rejected, dead, down):
            await gateway.close()


async def test_received_return_refunded_through_stripe_mock(service, published, wait_until):
    order = await service.delivered(lines=[("L1", 1, 4200)])
    ret = make_return(order, ("L1", 1, "NOT_AS_DESCRIBED"), whole_order=True)
    await service.send("return.received", ret)
    await wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    refund = Refund.model_validate(published.of_type("refund.issued")[0].data)
    assert refund.gateway == "stripe" and refund.gateway_reference.startswith("re_")
    assert refund.amount.amount == order.total_paid()  # seller at fault, whole order: shipping too
