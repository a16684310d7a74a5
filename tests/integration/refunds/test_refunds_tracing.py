"""A refund continues the trace of the event that asked for it: its events carry the event's trace
id, and the Stripe call (stripe-mock) is a span of that trace."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.refunds.domain import return_refund_id
from shared import tracing
from tests.integration.spans import TRACE_ID, TRACEPARENT, spans, trace_id_of
from tests.unit.refunds.builders import make_return

pytestmark = pytest.mark.integration
__all__ = ["spans"]  # the fixture


@pytest.fixture
def stripe_base() -> str:
    return os.environ.get("STRIPE_API_BASE", "http://127.0.0.1:12111")


async def test_a_refund_continues_the_trace_of_the_return_event(
    spans: InMemorySpanExporter, service, published, wait_until
):
    order = await service.delivered(lines=[("L1", 1, 1500)])
    ret = make_return(order, ("L1", 1, "DEFECTIVE"), received=[("L1", 1, "sellable")])
    with tracing.attached(tracing.context_of({"traceparent": TRACEPARENT})):  # as the returns service sends it
        sent = await service.send("return.received", ret)
    assert trace_id_of(sent.traceparent) == TRACE_ID

    await wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    [issued] = published.of_type("refund.issued", return_refund_id(ret.return_id))
    [refunded] = published.of_type("return.refunded", ret.return_id)
    assert issued.data["status"] == "issued"
    assert trace_id_of(issued.traceparent) == trace_id_of(refunded.traceparent) == TRACE_ID

    recorded = {span.name: span for span in spans.get_finished_spans()}
    stripe_call, handled = recorded["stripe refunds.create"], recorded["return.received process"]
    assert format(stripe_call.context.trace_id, "032x") == TRACE_ID
    assert stripe_call.parent is not None and stripe_call.parent.span_id == handled.context.span_id


async def test_with_recording_off_the_trace_context_is_still_carried(service, published, wait_until):
    assert not tracing.enabled()  # the default: no exporter configured, no spans, propagation only
    order = await service.delivered(lines=[("L1", 1, 1500)])
    ret = make_return(order, ("L1", 1, "DEFECTIVE"), received=[("L1", 1, "sellable")])
    with tracing.attached(tracing.context_of({"traceparent": TRACEPARENT})):
        await service.send("return.received", ret)

    await wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    [issued] = published.of_type("refund.issued", return_refund_id(ret.return_id))
    [refunded] = published.of_type("return.refunded", ret.return_id)
    # Without a recording span the handler's events name the incoming span itself as their parent.
    assert issued.traceparent == refunded.traceparent == TRACEPARENT


async def test_a_refund_the_platform_takes_over_at_its_deadline_starts_its_own_trace(
    spans: InMemorySpanExporter, service, published, wait_until
):
    service.clock.set(datetime(2025, 7, 7, 12, tzinfo=UTC))  # the return's refund is due on the 8th
    order = await service.delivered(lines=[("L1", 1, 1500)])
    ret = make_return(order, ("L1", 1, "DEFECTIVE"), received=[("L1", 1, "sellable")], refund_mode="manual")
    event = await service.send("return.received", ret)
    await wait_until(lambda: service.handled(event.id), message="return.received not handled")
    service.clock.set(ret.refund_due_at + timedelta(seconds=1))
    assert await service.app.state.deadline_job.run_once() == (1, 0)

    await wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    [refunded] = published.of_type("return.refunded", ret.return_id)
    [take_over] = [s for s in spans.get_finished_spans() if s.name == "deadline refund take-over"]
    assert take_over.parent is None and take_over.attributes["refund_id"] == return_refund_id(ret.return_id)
    assert trace_id_of(refunded.traceparent) == format(take_over.context.trace_id, "032x")
