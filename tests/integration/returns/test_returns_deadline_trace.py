"""With recording on, a deadline action starts a trace of its own, and the events it emits carry it:
the platform's authorization can be followed into refunds, emails and metrics like a request."""

from __future__ import annotations

from datetime import timedelta

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.returns.jobs import DeadlineJob
from tests.integration.returns.factories import unique
from tests.integration.spans import spans, trace_id_of

pytestmark = pytest.mark.integration
__all__ = ["spans"]  # the fixture


async def test_a_platform_authorization_starts_the_trace_its_event_carries(
    spans: InMemorySpanExporter, api, tap, clock, returns_app
):
    _, ret = await api.order_with_return(("L1", 1, "DEFECTIVE"), buyer_id=unique("b"), seller_id=unique("s"))
    rid = ret["return_id"]
    job = DeadlineJob(returns_app.state.lifecycle, interval=timedelta(seconds=1))
    clock.advance(timedelta(hours=49))  # past the 48-hour response deadline
    await job.run_once()

    created, authorized = await tap.wait_types(rid, ["return.created", "return.authorized"])
    assert authorized.data["authorization"]["automatic"] is True
    [action] = [
        s
        for s in spans.get_finished_spans()
        if s.name == "deadline return.authorized" and s.attributes["return_id"] == rid
    ]
    assert action.parent is None  # a root: no request or event caused it
    assert trace_id_of(authorized.traceparent) == format(action.context.trace_id, "032x")
    assert created.traceparent is None  # the request that created it sent no trace context
