"""Killed after the gateway accepted a refund (a return's, a claim's, an offer's) but before it was
recorded: a restart pays once.

The service runs as a real process (`python -m services.refunds`) and gets SIGKILL while the
gateway holds its answer to an accepted refund. After a restart the payment is resumed under the
same idempotency key, so the gateway pays once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from services.refunds.domain import return_refund_id
from shared.models import Refund
from tests.integration.service_process import STARTUP_S, ServiceProcesses, kill9, ready
from tests.ports import free_port
from tests.unit.refunds.builders import make_return
from tests.unit.refunds.claim_builders import granted_claim
from tests.unit.refunds.resolution_builders import offer_accepted

pytestmark = pytest.mark.integration


@pytest.fixture
def process_env(refunds_settings) -> dict[str, str]:
    s = refunds_settings
    return os.environ | {
        "MONGODB_URL": s.mongodb_url,
        "MONGODB_DB": s.database_name,
        "AMQP_URL": s.amqp_url,
        "EXCHANGE": s.exchange,
        "ORDERS_EXCHANGE": s.orders_exchange,
        "QUEUE_PREFIX": s.queue_prefix,
        "RETRY_DELAYS_MS": "[100,200]",
        "JWT_SECRET": s.jwt_secret,
        "STRIPE_API_BASE": s.stripe_api_base,
        "GATEWAY_TIMEOUT_S": "30",
        "GATEWAY_RETRY_DELAYS_MS": "[50]",
        "LEASE_S": "1",
        "JOB_INTERVAL_S": "0.2",
        "OUTBOX_POLL_MS": "100",
        "OUTBOX_CLAIM_MS": "1000",  # the killed process's claims soon run out
        "LOG_LEVEL": "WARNING",
        "PORT": str(free_port()),
    }


@pytest.fixture
def run_service(process_env) -> Iterator:
    processes = ServiceProcesses("services.refunds", process_env)
    yield processes.start
    processes.stop_all()


async def test_killed_after_the_gateway_accepted_then_restarted_pays_once(
    harness, published, stripe_stub, run_service, process_env, wait_until
):
    service = harness
    port = process_env["PORT"]
    process = run_service()
    await wait_until(lambda: ready(port), timeout=STARTUP_S, interval=0.1, message="service did not start")
    order = await service.delivered(lines=[("L1", 2, 1250)], shipping=0)
    ret = make_return(order, ("L1", 2, "DEFECTIVE"))
    refund_id = return_refund_id(ret.return_id)
    stripe_stub.mode = "hold"
    await service.send("return.received", ret)

    await wait_until(lambda: stripe_stub.posts(), timeout=10, message="gateway never called")
    kill9(process)  # the gateway has paid; the service never hears back
    assert len(stripe_stub.refunds) == 1
    assert (await service.refund_doc(refund_id))["status"] == "pending"
    stripe_stub.mode = "ok"
    stripe_stub.release.set()

    run_service()
    await wait_until(
        lambda: published.of_type("return.refunded", ret.return_id),
        timeout=STARTUP_S,
        message="no return.refunded after the restart",
    )
    doc = await service.refund_doc(refund_id)
    refund = Refund.model_validate(doc)
    keys = [call.idempotency_key for call in stripe_stub.posts()]
    assert len(keys) >= 2 and set(keys) == {refund_id}  # the same key before and after the crash
    assert len(stripe_stub.refunds) == 1 and stripe_stub.paid_total() == 2500  # paid once
    assert (refund.status, refund.gateway_reference, refund.amount.amount) == ("issued", "re_stub_1", 2500)
    assert len({e.id for e in published.of_type("refund.issued")}) == 1
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"]) == (2500, 0)


async def test_killed_while_paying_a_claim_then_restarted_pays_the_claim_once(
    harness, published, stripe_stub, run_service, process_env, wait_until
):
    service = harness
    port = process_env["PORT"]
    process = run_service()
    await wait_until(lambda: ready(port), timeout=STARTUP_S, interval=0.1, message="service did not start")
    order = await service.delivered(lines=[("L1", 1, 3000)], shipping=0)
    claim = granted_claim(order, 4000, service.clock.now())  # more than was paid: capped to 3000
    refund_id = f"rf_{claim.claim_id}"
    stripe_stub.mode = "hold"
    await service.send_claim("claim.granted", claim)

    await wait_until(lambda: stripe_stub.posts(), timeout=10, message="gateway never called")
    kill9(process)  # the gateway has paid the claim; the service never hears back
    assert len(stripe_stub.refunds) == 1
    assert (await service.refund_doc(refund_id))["status"] == "pending"
    stripe_stub.mode = "ok"
    stripe_stub.release.set()

    run_service()
    await wait_until(
        lambda: published.of_type("refund.issued", refund_id),
        timeout=STARTUP_S,
        message="no refund.issued for the claim after the restart",
    )
    refund = Refund.model_validate(await service.refund_doc(refund_id))
    keys = [call.idempotency_key for call in stripe_stub.posts()]
    assert len(keys) >= 2 and set(keys) == {refund_id}  # the same key before and after the crash
    assert {call.params["metadata[claim_id]"] for call in stripe_stub.posts()} == {claim.claim_id}
    assert len(stripe_stub.refunds) == 1 and stripe_stub.paid_total() == 3000  # paid once
    assert (refund.status, refund.kind, refund.claim_id, refund.amount.amount) == (
        "issued",
        "claim",
        claim.claim_id,
        3000,
    )
    assert len({e.id for e in published.of_type("refund.issued")}) == 1 and published.of_type("refund.failed") == []
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"], ledger["available"]) == (3000, 0, 0)


async def test_killed_while_paying_an_accepted_offer_then_restarted_pays_it_once(
    harness, published, stripe_stub, run_service, process_env, wait_until
):
    service = harness
    port = process_env["PORT"]
    process = run_service()
    await wait_until(lambda: ready(port), timeout=STARTUP_S, interval=0.1, message="service did not start")
    order = await service.delivered(lines=[("L1", 1, 3000)], shipping=0)
    ret = offer_accepted(order, 1200)
    refund_id = "rf_" + ret.settlement.offer_id
    stripe_stub.mode = "hold"
    await service.send("return.offer_accepted", ret)

    await wait_until(lambda: stripe_stub.posts(), timeout=10, message="gateway never called")
    kill9(process)  # the gateway has paid the offer; the service never hears back
    assert len(stripe_stub.refunds) == 1
    assert (await service.refund_doc(refund_id))["status"] == "pending"
    stripe_stub.mode = "ok"
    stripe_stub.release.set()

    run_service()
    await wait_until(
        lambda: published.of_type("return.refunded", ret.return_id),
        timeout=STARTUP_S,
        message="no return.refunded for the offer after the restart",
    )
    refund = Refund.model_validate(await service.refund_doc(refund_id))
    keys = [call.idempotency_key for call in stripe_stub.posts()]
    assert len(keys) >= 2 and set(keys) == {refund_id}  # the same key before and after the crash
    assert len(stripe_stub.refunds) == 1 and stripe_stub.paid_total() == 1200  # paid once
    assert (refund.status, refund.kind, refund.offer_id, refund.amount.amount) == (
        "issued",
        "offer",
        ret.settlement.offer_id,
        1200,
    )
    assert len({e.id for e in published.of_type("refund.issued")}) == 1 and published.of_type("refund.failed") == []
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"], ledger["available"]) == (1200, 0, 1800)
