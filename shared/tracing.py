"""Tracing: one W3C trace from an HTTP call through its events, handlers, outbox, gateway and email.

Propagation is always on and costs next to nothing: a request's `traceparent`/`tracestate` headers
become the current OpenTelemetry context (a non-recording span), every event built meanwhile
(shared.events.new_event) carries it in its CloudEvents distributed-tracing extension attributes
`traceparent`/`tracestate`, with `requestid` (the request's X-Request-ID). The envelope is stored with
the outbox event, so the relay publishes it whenever and wherever it runs, and the bus copies them
into AMQP headers. A consumer runs each handler in its event's context (`handling`), so what the
handler emits, pays or mails continues the same trace.

Recording is off unless an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`, or `enable()`
with an exporter in tests): only then is there an SDK TracerProvider, are FastAPI, aio-pika and
PyMongo instrumented, and do `span()` and `handling()` start spans. Without it no span is recorded
per request or event: only the incoming context is carried along.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.http import request_id as request_ids

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)

TRACE_HEADERS = ("traceparent", "tracestate")
_PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None


def enabled() -> bool:
    """Spans are recorded and exported (an SDK TracerProvider is installed in this process)."""
    return _provider is not None


def enable(service: str, exporter: SpanExporter | None = None, *, endpoint: str | None = None) -> TracerProvider:
    """Record spans from now on: to `exporter` at each span's end (tests: InMemorySpanExporter) or, in
    batches, to the OTLP/HTTP `endpoint` (`<endpoint>/v1/traces`). Instruments aio-pika and PyMongo;
    apps created afterwards are instrumented by `instrument_app`. Once per process."""
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    global _provider
    if _provider is not None:
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        traces = f"{endpoint.rstrip('/')}/v1/traces" if endpoint else None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces)))
    AioPikaInstrumentor().instrument(tracer_provider=provider)
    PymongoInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    log.info("tracing on", extra={"otlp_endpoint": endpoint, "exporter": type(exporter).__name__})
    return provider


def disable() -> None:
    """Stop recording (tests): flush and shut the provider down, remove the instrumentations."""
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    global _provider
    provider, _provider = _provider, None
    if provider is not None:
        AioPikaInstrumentor().uninstrument()
        PymongoInstrumentor().uninstrument()
        provider.shutdown()


def configure(service: str, otlp_endpoint: str | None) -> None:
    """Turn recording on when an OTLP endpoint is configured; otherwise leave it as it is (off)."""
    if otlp_endpoint:
        enable(service, endpoint=otlp_endpoint)


def instrument_app(app: FastAPI) -> None:
    """Server spans for the app's requests when recording is on (probes and scrapes excluded);
    otherwise the request's trace context is only propagated (TraceContextMiddleware)."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider, excluded_urls="healthz,readyz,metrics")


# ---- reading and writing the context ---------------------------------------------------------


def context_of(carrier: Mapping[str, Any]) -> otel_context.Context | None:
    """The trace context a `traceparent` (and `tracestate`) in `carrier` names; None when absent or
    malformed (an old producer, a client that sends none)."""
    if not carrier.get("traceparent"):
        return None
    found = _PROPAGATOR.extract({k: str(carrier[k]) for k in TRACE_HEADERS if carrier.get(k)})
    return found if trace.get_current_span(found).get_span_context().is_valid else None


def current_fields() -> dict[str, str]:
    """The envelope attributes of an event caused now: `traceparent`/`tracestate` of the current
    span (when there is one) and `requestid` (when known)."""
    fields: dict[str, str] = {}
    if trace.get_current_span().get_span_context().is_valid:
        _PROPAGATOR.inject(fields)
    request_id = request_ids.current_request_id()
    if request_id:
        fields["requestid"] = request_id
    return fields


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits (logs), or None."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def trace_headers(event: Any) -> dict[str, Any]:
    """`traceparent`/`tracestate` of an event, for AMQP headers (values are str)."""
    return {name: value for name in TRACE_HEADERS if (value := getattr(event, name, None))}


# ---- running work in a context ---------------------------------------------------------------


@contextmanager
def attached(ctx: otel_context.Context | None) -> Iterator[None]:
    """Run the block in `ctx` (nothing changes when it is None)."""
    if ctx is None:
        yield
        return
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


def carried(event: Any) -> dict[str, str]:
    """The trace attributes (`traceparent`, `tracestate`, `requestid`) an event carries."""
    return {name: value for name in (*TRACE_HEADERS, "requestid") if (value := getattr(event, name, None))}


def clean(carrier: Mapping[str, Any]) -> dict[str, str]:
    """`traceparent`/`tracestate` as the W3C propagator writes them, malformed ones dropped: safe to
    store and to put in a mail header even when they came from outside."""
    found = context_of(carrier)
    out: dict[str, str] = {}
    if found is not None:
        _PROPAGATOR.inject(out, context=found)
    return out


@contextmanager
def continued(carrier: Mapping[str, Any], name: str, kind: trace.SpanKind, **attributes: Any) -> Iterator[None]:
    """Continue the work `carrier` (an event's attributes, a stored record) was caused by: its trace
    and request id, and a span `name` of that trace when recording."""
    with request_ids.request_id_scope(carrier.get("requestid")), attached(context_of(carrier)):
        with span(name, kind=kind, **attributes):
            yield


def handling(event: Any) -> AbstractContextManager[None]:
    """Run a consumer's handler for `event` in the event's trace and with its request id."""
    carrier = carried(event)
    if not carrier and _provider is None:
        return nullcontext()  # nothing to continue, nothing to record: the common case of jobs' events
    return continued(
        carrier,
        f"{event.type} process",
        trace.SpanKind.CONSUMER,
        **{"messaging.system": "rabbitmq", "messaging.message.id": event.id},
    )


@contextmanager
def publishing(event: Any) -> Iterator[None]:
    """Publish `event` in its own trace (the aio-pika instrumentation's publish span joins it).
    Nothing to do when not recording: the AMQP headers come from the envelope."""
    if _provider is None:
        yield
        return
    with attached(context_of(trace_headers(event))):
        yield


@contextmanager
def span(name: str, *, kind: trace.SpanKind = trace.SpanKind.INTERNAL, **attributes: Any) -> Iterator[None]:
    """A span around an outbound call (the payment gateway) when recording; nothing otherwise."""
    if _provider is None:
        yield
        return
    with _provider.get_tracer(__name__).start_as_current_span(name, kind=kind, attributes=attributes):
        yield


class TraceContextMiddleware:
    """Accept W3C `traceparent`/`tracestate` on every request: the request runs in that context, so
    the events it causes carry it. When recording, the FastAPI instrumentation does this itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # With recording on, the FastAPI instrumentation (outermost) has already made the request's span.
        if scope["type"] != "http" or (_provider is not None and trace.get_current_span().is_recording()):
            await self.app(scope, receive, send)
            return
        carrier = {}
        for name, value in scope["headers"]:
            if name == b"traceparent" or name == b"tracestate":
                carrier[name.decode("latin-1")] = value.decode("latin-1")
        with attached(context_of(carrier) if carrier else None):
            await self.app(scope, receive, send)
