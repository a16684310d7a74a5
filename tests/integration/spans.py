"""Recording spans in a test process: `shared.tracing` on, with an in-memory exporter, for one test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def trace_id_of(traceparent: str | None) -> str | None:
    return traceparent.split("-")[1] if traceparent else None


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans recorded while the test runs (apps created inside it are instrumented)."""
    exporter = InMemorySpanExporter()
    tracing.enable("tests", exporter)
    try:
        yield exporter
    finally:
        tracing.disable()
