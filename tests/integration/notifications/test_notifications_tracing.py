"""One trace from the HTTP call to the inbox and the refund: `POST /v1/returns` with a W3C `traceparent`
(the returns service in this process) gives a `return.created` in the caller's trace, and so are the
emails the notifications service sends for it (their `traceparent` header and record) and its
`notification.sent`, the request id riding along; the caller's returnless authorization in the same
trace is refunded by the refunds service (stripe-mock), its `refund.issued` and `return.refunded`
in that trace too. Real broker, real SMTP (aiosmtpd), spans in memory."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.refunds.app import create_app as create_refunds_app
from services.refunds.settings import Settings as RefundsSettings
from services.returns.app import create_app as create_returns_app
from services.returns.settings import Settings as ReturnsSettings
from shared.bus import EventBus
from shared.clock import FixedClock
from shared.events import new_event
from shared.models import Order
from tests.integration.returns.factories import ReturnsApi
from tests.integration.returns.tap import EventTap
from tests.integration.spans import TRACE_ID, TRACEPARENT, spans, trace_id_of
from tests.queues import service_queues
from tests.unit.returns.builders import DELIVERED, order_data, request_data

pytestmark = pytest.mark.integration
__all__ = ["spans"]  # the fixture

RETURNS_SECRET = "returns-tracing-secret-" + "t" * 40


@pytest.fixture
async def returns(
    spans: InMemorySpanExporter, service: Any, mongodb_url: str, amqp_url: str, mongo_client: Any, amqp: Any
) -> AsyncIterator[tuple[ReturnsApi, EventTap, EventBus]]:
    """The returns and refunds services on the notifications service's exchange, created with tracing on."""
    prefix = service.settings.queue_prefix
    common = dict(
        mongodb_url=mongodb_url,
        amqp_url=amqp_url,
        exchange=service.settings.exchange,
        orders_exchange=f"{prefix}orders",
        jwt_secret=RETURNS_SECRET,
        retry_delays_ms=[50, 200],
        outbox_poll_ms=50,
        log_level="WARNING",
        jobs_enabled=False,
    )
    settings = ReturnsSettings(
        **common,
        mongodb_db=f"test_returns_tracing_{uuid.uuid4().hex[:8]}",
        queue_prefix=f"{prefix}r.",
    )
    refunds_settings = RefundsSettings(
        **common,
        mongodb_db=f"test_refunds_tracing_{uuid.uuid4().hex[:8]}",
        queue_prefix=f"{prefix}f.",
        stripe_api_base=os.environ.get("STRIPE_API_BASE", "http://127.0.0.1:12111"),
        gateway_timeout_s=5.0,
        job_interval_s=3600.0,
    )
    tap = EventTap(amqp_url, settings.exchange)
    await tap.start()
    clock = FixedClock(DELIVERED + timedelta(days=5))
    app, refunds_app = create_returns_app(settings, clock), create_refunds_app(refunds_settings, clock)
    try:
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
            async with LifespanManager(refunds_app, startup_timeout=30, shutdown_timeout=30):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://returns") as http:
                    yield ReturnsApi(http, RETURNS_SECRET), tap, refunds_app.state.bus
    finally:
        await tap.close()
        async with amqp.channel() as channel:
            for each in (settings, refunds_settings):
                await mongo_client.drop_database(each.database_name)
                for queue in service_queues(each.queue_name, each.retry_delays_ms):
                    await channel.queue_delete(queue)
            await channel.exchange_delete(settings.orders_exchange)


async def test_one_trace_from_the_request_to_the_inbox_and_the_refund(
    spans: InMemorySpanExporter, returns, service, mailbox, announcements, wait_until
):
    api, tap, publisher = returns
    order = Order.model_validate(order_data())
    delivered = new_event(
        "order.delivered", service="orders", subject=order.order_id, data=order, sequence=1, time=order.delivered_at
    )
    await publisher.publish(delivered, exchange=f"{service.settings.queue_prefix}orders")  # to both services

    async def known() -> bool:
        response = await api.client.get(f"/v1/orders/{order.order_id}", headers=api.as_agent())
        return response.status_code == 200

    await wait_until(known, message="the returns service knows the order")
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    headers = api.as_buyer(order.buyer.id) | {"traceparent": TRACEPARENT, "X-Request-ID": request_id}
    response = await api.client.post("/v1/returns", json=request_data(order.order_id), headers=headers)
    assert response.status_code == 201, response.text
    return_id = response.json()["return_id"]

    [created] = await tap.wait_types(return_id, ["return.created"])
    assert trace_id_of(created.traceparent) == TRACE_ID and created.requestid == request_id

    def emails() -> list[Any]:
        return [m for m in mailbox.received() if return_id in str(m.get_body(("plain",)).get_content())]

    await wait_until(lambda: len(emails()) == 2, message="the buyer's and the seller's emails")
    assert {trace_id_of(m["traceparent"]) for m in emails()} == {TRACE_ID}
    records = await service.notifications(event_id=created.id)
    assert len(records) == 2
    assert {trace_id_of(r["traceparent"]) for r in records} == {TRACE_ID}
    assert {r["requestid"] for r in records} == {request_id}

    await wait_until(lambda: len(announcements.of("notification.sent")) >= 2, message="notification.sent twice")
    sent = [e for e in announcements.of("notification.sent") if e.data["event_id"] == created.id]
    assert len(sent) == 2 and {trace_id_of(e.traceparent) for e in sent} == {TRACE_ID}
    assert {e.requestid for e in sent} == {request_id}

    # The caller goes on in the same trace: a returnless authorization, refunded at once.
    seller = api.as_seller(order.seller.id) | {"traceparent": TRACEPARENT}
    response = await api.client.post(f"/v1/returns/{return_id}/authorize", json={"returnless": True}, headers=seller)
    assert response.status_code == 200, response.text

    def refund_events() -> list[Any]:
        return [e for e in tap.events if e.type in ("refund.issued", "return.refunded") and return_id in str(e.data)]

    await wait_until(lambda: len(refund_events()) == 2, timeout=20, message="refund.issued and return.refunded")
    assert {trace_id_of(e.traceparent) for e in refund_events()} == {TRACE_ID}

    ours = [s for s in spans.get_finished_spans() if format(s.context.trace_id, "032x") == TRACE_ID]
    names = {s.name for s in ours}
    expected = {"POST /v1/returns", "return.created process", "email send", "stripe refunds.create"}
    assert expected <= names, names
