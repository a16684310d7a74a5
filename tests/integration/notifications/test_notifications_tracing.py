"""One trace from the HTTP call to the inbox: `POST /v1/returns` with a W3C `traceparent` (the returns
service in this process), the `return.created` it publishes, the emails the notifications service
sends for it (their `traceparent` header and record) and its `notification.sent` all carry the
caller's trace id; the request id rides along. Real broker, real SMTP (aiosmtpd), spans in memory."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.returns.app import create_app as create_returns_app
from services.returns.settings import Settings as ReturnsSettings
from shared.bus import QueueNames
from shared.clock import FixedClock
from tests.integration.returns.factories import ReturnsApi
from tests.integration.returns.tap import EventTap
from tests.integration.spans import TRACE_ID, TRACEPARENT, spans, trace_id_of
from tests.unit.returns.builders import DELIVERED, order_data, request_data

pytestmark = pytest.mark.integration
__all__ = ["spans"]  # the fixture

RETURNS_SECRET = "returns-tracing-secret-" + "t" * 40


@pytest.fixture
async def returns(
    spans: InMemorySpanExporter, service: Any, mongodb_url: str, amqp_url: str, mongo_client: Any, amqp: Any
) -> AsyncIterator[tuple[ReturnsApi, EventTap]]:
    """The returns service on the notifications service's exchange, created with tracing on."""
    settings = ReturnsSettings(
        mongodb_url=mongodb_url,
        mongodb_db=f"test_returns_tracing_{uuid.uuid4().hex[:8]}",
        amqp_url=amqp_url,
        exchange=service.settings.exchange,
        orders_exchange=f"{service.settings.queue_prefix}orders",
        queue_prefix=f"{service.settings.queue_prefix}r.",
        jwt_secret=RETURNS_SECRET,
        retry_delays_ms=[50, 200],
        outbox_poll_ms=50,
        jobs_enabled=False,
        log_level="WARNING",
    )
    tap = EventTap(amqp_url, settings.exchange)
    await tap.start()
    app = create_returns_app(settings, FixedClock(DELIVERED + timedelta(days=5)))
    try:
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://returns") as http:
                yield ReturnsApi(http, RETURNS_SECRET), tap
    finally:
        await tap.close()
        await mongo_client.drop_database(settings.database_name)
        async with amqp.channel() as channel:
            for queue in QueueNames(settings.queue_name, tuple(settings.retry_delays_ms)).all:
                await channel.queue_delete(queue)


async def test_one_trace_from_the_request_to_the_inbox(
    spans: InMemorySpanExporter, returns, service, mailbox, announcements, wait_until
):
    api, tap = returns
    order = await api.put_order(order_data())
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    headers = api.as_buyer(order["buyer"]["id"]) | {"traceparent": TRACEPARENT, "X-Request-ID": request_id}
    response = await api.client.post("/v1/returns", json=request_data(order["order_id"]), headers=headers)
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

    await wait_until(lambda: len(announcements.of("notification.sent")) == 2, message="notification.sent twice")
    sent = [e for e in announcements.of("notification.sent") if e.data["event_id"] == created.id]
    assert {trace_id_of(e.traceparent) for e in sent} == {TRACE_ID}
    assert {e.requestid for e in sent} == {request_id}

    ours = [s for s in spans.get_finished_spans() if format(s.context.trace_id, "032x") == TRACE_ID]
    names = {s.name for s in ours}
    assert {"POST /v1/returns", "return.created process", "email send"} <= names, names
