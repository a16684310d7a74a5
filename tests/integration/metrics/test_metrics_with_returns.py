"""The metrics and returns services in-process on one real broker: once metrics flags a buyer,
the returns service stops auto-authorizing them and stops refunding them without a return."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.returns.app import create_app as create_returns_app
from services.returns.settings import Settings
from shared.clock import FixedClock
from shared.events import new_event
from shared.models import Order
from tests.integration.returns.factories import ReturnsApi, order_data
from tests.queues import service_queues
from tests.unit.returns.builders import DELIVERED

pytestmark = pytest.mark.integration

RETURNS_SECRET = "returns-with-metrics-" + "r" * 40
SELLER = "s-generous"


@pytest.fixture
async def services(start_metrics, mongodb_url, amqp_url, mongo_client, amqp, queue_prefix):
    clock = FixedClock(DELIVERED + timedelta(days=5))
    metrics = await start_metrics(clock)
    settings = Settings(
        mongodb_url=mongodb_url,
        mongodb_db=f"test_returns_metrics_{uuid.uuid4().hex[:8]}",
        amqp_url=amqp_url,
        exchange=metrics.settings.exchange,
        orders_exchange=metrics.settings.orders_exchange,
        queue_prefix=f"{queue_prefix}r.",
        jwt_secret=RETURNS_SECRET,
        retry_delays_ms=[50, 200],
        outbox_poll_ms=50,
        jobs_enabled=False,
        log_level="WARNING",
    )
    app = create_returns_app(settings, clock)
    try:
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://returns") as http:
                yield metrics, ReturnsApi(http, RETURNS_SECRET), app.state.lifecycle.store
    finally:
        await mongo_client.drop_database(settings.database_name)
        async with amqp.channel() as channel:
            for queue in service_queues(settings.queue_name, settings.retry_delays_ms):
                await channel.queue_delete(queue)


async def deliver(metrics, api: ReturnsApi, buyer_id: str, count: int, wait_until) -> list[str]:
    """`order.delivered` on the orders exchange, as the upstream order system sends it."""
    orders = [Order.model_validate(order_data(buyer_id=buyer_id, seller_id=SELLER)) for _ in range(count)]
    for order in orders:
        await metrics.publish(
            new_event(
                "order.delivered",
                service="orders",
                subject=order.order_id,
                data=order,
                sequence=0,
                time=order.delivered_at,
            )
        )
    for order in orders:
        await wait_until(lambda o=order: _known(api, o.order_id), message=f"returns knows {order.order_id}")
    return [order.order_id for order in orders]


async def _known(api: ReturnsApi, order_id: str) -> bool:
    response = await api.client.get(f"/v1/orders/{order_id}", headers=api.as_agent())
    return response.status_code == 200


async def test_a_flagged_buyer_is_no_longer_auto_authorized_nor_refunded_without_return(services, wait_until):
    metrics, api, returns_store = services
    await api.put_policy(SELLER, auto_authorize=True, returnless_threshold={"amount": 2000, "currency": "USD"})
    good = await deliver(metrics, api, "b-good", 1, wait_until)
    orders = await deliver(metrics, api, "b-abuse", 4, wait_until)
    await wait_until(lambda: _processed_at_least(metrics, 5), message="metrics saw the deliveries")

    # Before: lamps (49.99, over the returnless threshold) are authorized at once.
    for order_id in orders[:2]:
        ret = await api.create_return(order_id, ("L2", 1, "DEFECTIVE"), buyer="b-abuse")
        assert ret["status"] == "authorized" and ret["authorization"]["automatic"] is True

    # 2 of 4 orders returned: 50 % over 4 orders. Metrics flags the buyer once; returns hears of it.
    await wait_until(lambda: metrics.flags("b-abuse"), message="buyer.flagged")
    await wait_until(lambda: returns_store.buyer_flagged("b-abuse"), message="returns stored the flag")
    standing = await metrics.get("/v1/metrics/buyers/b-abuse", role="service", sub="returns")
    assert (standing["returns"], standing["orders"], standing["flag"]["flagged"]) == (2, 4, True)

    lamp = await api.create_return(orders[2], ("L2", 1, "DEFECTIVE"), buyer="b-abuse")
    assert lamp["status"] == "requested" and lamp["authorization"] is None
    mug = await api.create_return(orders[3], ("L1", 1, "NO_LONGER_NEEDED"), buyer="b-abuse")
    assert mug["status"] == "requested" and mug["authorization"] is None

    # An unflagged buyer's mug (15.00, under the threshold) is still refunded without a return.
    control = await api.create_return(good[0], ("L1", 1, "NO_LONGER_NEEDED"), buyer="b-good")
    assert control["status"] == "authorized" and control["authorization"]["returnless"] is True

    await wait_until(lambda: _processed_at_least(metrics, 5 + 2 * 2 + 2 + 2), message="metrics saw the returns")
    assert metrics.flags("b-abuse") == ["buyer.flagged"]


async def _processed_at_least(metrics, count: int) -> bool:
    return await metrics.processed() >= count
