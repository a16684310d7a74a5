"""W3C trace context into event envelopes and out again (shared.tracing), with recording off."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest
from aiosmtplib.email import flatten_message
from fastapi import FastAPI
from opentelemetry import trace

from services.notifications.domain import new_notification
from services.notifications.mail import build_message, message_bytes
from services.notifications.rendering import plan
from services.notifications.samples import sample_event
from services.notifications.settings import Settings as NotificationSettings
from shared import tracing
from shared.events import CloudEvent, new_event
from shared.http import RequestIdMiddleware
from shared.http.request_id import current_request_id, request_id_scope
from shared.models import Order
from shared.outbox_writes import outbox_entries
from tests.unit.returns.builders import order_data
from tests.unit.shared.test_shared_observability import json_log

__all__ = ["json_log"]  # the fixture

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
NOW = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)


def delivered() -> CloudEvent:
    order = Order.model_validate(order_data())
    return new_event("order.delivered", service="orders", subject=order.order_id, data=order, sequence=1, time=NOW)


def test_an_event_caused_outside_any_trace_or_request_has_no_trace_attributes() -> None:
    assert not tracing.enabled()
    event = delivered()
    assert (event.traceparent, event.tracestate, event.requestid) == (None, None, None)
    assert not {"traceparent", "tracestate", "requestid"} & set(CloudEvent.from_json(event.to_json()).model_fields_set)
    assert b"traceparent" not in event.to_json()  # absent, not null


def test_an_event_carries_the_current_trace_context_and_request_id_into_the_outbox() -> None:
    carrier = {"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE"}
    with tracing.attached(tracing.context_of(carrier)), request_id_scope("req-1"):
        event = delivered()
    assert (event.traceparent, event.tracestate, event.requestid) == (TRACEPARENT, "congo=t61rcWkgMzE", "req-1")
    [entry] = outbox_entries([event])  # what the relay publishes later, from the store
    assert CloudEvent.model_validate(entry["envelope"]) == event
    assert tracing.trace_headers(event) == carrier  # the AMQP headers


def test_events_of_old_producers_and_malformed_trace_attributes_still_parse() -> None:
    old = delivered().model_dump(mode="json", exclude_none=True)
    assert CloudEvent.model_validate(old).traceparent is None
    odd = CloudEvent.model_validate(old | {"traceparent": "garbage\r\nBcc: x@y.z", "requestid": "r" * 300})
    assert tracing.context_of(tracing.carried(odd)) is None  # ignored, not trusted
    assert tracing.clean(tracing.carried(odd)) == {}
    with tracing.handling(odd):  # a handler still runs, with no trace
        assert tracing.current_trace_id() is None


@pytest.mark.parametrize("requestid", ["r" * 300, "req-1\nlevel=ERROR forged", "req 1"])
def test_an_events_request_id_that_is_not_sane_is_not_logged_or_passed_on(requestid: str) -> None:
    """An event from another system may carry any `requestid`: the HTTP path refuses such ids, so
    does a consumer (it would otherwise be logged and copied into every event the handler emits)."""
    cause = CloudEvent.model_validate(delivered().model_dump(mode="json", exclude_none=True) | {"requestid": requestid})
    with tracing.handling(cause):
        assert current_request_id() is None
        caused = delivered()
    assert caused.requestid is None


def test_a_handler_runs_in_its_events_trace_and_request() -> None:
    with tracing.attached(tracing.context_of({"traceparent": TRACEPARENT})), request_id_scope("req-2"):
        cause = delivered()
    with tracing.handling(cause):
        assert tracing.current_trace_id() == TRACE_ID
        caused = delivered()
    assert (caused.traceparent, caused.requestid) == (TRACEPARENT, "req-2")
    assert tracing.current_trace_id() is None


def test_the_email_of_a_traced_event_carries_traceparent_in_both_mime_builders() -> None:
    event = sample_event("return.created", locale="en").model_copy(update={"traceparent": TRACEPARENT})
    settings = NotificationSettings()
    for email in plan(event):
        doc = new_notification(event, event.typed(), email, NOW)
        assert doc["traceparent"] == TRACEPARENT and "requestid" not in doc
        assert build_message(doc, settings)["traceparent"] == TRACEPARENT
        assert message_bytes(doc, settings) == flatten_message(build_message(doc, settings))
        assert f"traceparent: {TRACEPARENT}\r\n".encode() in (message_bytes(doc, settings) or b"")


async def test_every_request_runs_in_the_traceparent_it_sent() -> None:
    app = FastAPI()
    seen: list[CloudEvent] = []
    recording: list[bool] = []

    @app.post("/things")
    async def things() -> dict[str, str]:
        seen.append(delivered())
        recording.append(trace.get_current_span().is_recording())
        return {}

    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(tracing.TraceContextMiddleware)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.post("/things", headers={"traceparent": TRACEPARENT, "x-request-id": "abc"})
        await client.post("/things", headers={"traceparent": "00-bad"})
        await client.post("/things")
    assert [(e.traceparent, e.requestid is not None) for e in seen] == [(TRACEPARENT, True), (None, True), (None, True)]
    assert seen[0].requestid == "abc"
    assert recording == [False, False, False]  # recording off: the context is carried, no span is made


def test_log_lines_name_the_request_and_the_trace(json_log) -> None:
    log = logging.getLogger("returns.test")
    with tracing.attached(tracing.context_of({"traceparent": TRACEPARENT})), request_id_scope("req-3"):
        log.info("inside")
    log.info("outside")
    inside, outside = json_log()
    assert (inside["trace_id"], inside["request_id"]) == (TRACE_ID, "req-3")
    assert (outside["trace_id"], outside["request_id"]) == (None, None)
