"""Operating the services: JSON logs (with request ids, emails redacted), Prometheus, health."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import IO, Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from pythonjsonlogger.json import JsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import ops_metrics
from shared.http import ServiceUnavailable, current_request_id, error_response
from shared.tracing import current_trace_id

# ---- logging --------------------------------------------------------------------------------

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
REDACTED = "[redacted-email]"
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def redact_text(text: str) -> str:
    """`text` with every email address replaced."""
    return EMAIL.sub(REDACTED, text) if "@" in text else text


def redact(value: Any) -> Any:
    """`value` with every email address replaced; walks dicts, lists and tuples."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(item) for item in value)
    return value


class RedactingFilter(logging.Filter):
    """Safety net, not a licence: no buyer address may reach the logs, even by mistake.

    Also stamps each record with the service name, the current request id and trace id.
    """

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message:
            record.msg, record.args = EMAIL.sub(REDACTED, message), None
        attributes = record.__dict__
        for key in attributes.keys() - _RECORD_ATTRS:  # the `extra` fields (a set operation in C)
            value = attributes[key]
            if isinstance(value, str | Mapping | list | tuple):
                attributes[key] = redact(value)
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        if getattr(record, "trace_id", None) is None:
            record.trace_id = current_trace_id()
        if self.service is not None:
            record.service = self.service
        return True


class _Formatter(JsonFormatter):
    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return redact_text(_text(super().formatException(ei)))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return redact_text(_text(super().formatStack(stack_info)))


def _text(formatted: str | list[str]) -> str:
    """python-json-logger answers a list of lines only when configured *_as_array, which we are not."""
    return formatted if isinstance(formatted, str) else "\n".join(formatted)


_HANDLER_NAME = "returns-platform-json"


def configure_logging(service: str, level: str | int = "INFO", *, stream: IO[str] | None = None) -> logging.Handler:
    """JSON lines on stdout for the whole process; safe to call again (replaces its handler)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        _Formatter(
            "%(levelname)s %(name)s %(service)s %(request_id)s %(trace_id)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
    )
    handler.addFilter(RedactingFilter(service))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # Every record otherwise looks up its caller's frame, thread and process: a third of a log
    # line's CPU, for attributes these JSON lines never print (the logging docs' "Optimization").
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # uvicorn installs its own text handlers; route its records through ours instead. Its access
    # log carries client addresses, so the metrics middleware logs requests instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    return handler


# ---- metrics --------------------------------------------------------------------------------

_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes: no access log


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.requests = Counter(
            "http_requests_total", "HTTP requests served.", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to serve an HTTP request.",
            ["method", "route", "status"],
            registry=registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        children = self._children.get(key)
        if children is None:  # label lookups are the slow part; cache the children
            children = self._children[key] = (self.requests.labels(*key), self.latency.labels(*key))
        children[0].inc()
        children[1].observe(seconds)


_default_metrics: HttpMetrics | None = None


def http_metrics() -> HttpMetrics:
    """The process-wide HTTP metrics in the default registry (created once)."""
    global _default_metrics
    if _default_metrics is None:
        _default_metrics = HttpMetrics()
    return _default_metrics


access_log = logging.getLogger("access")


class MetricsMiddleware:
    """Counts and times requests by method, route template (never the raw path) and status."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics | None = None, access_log: bool = True) -> None:
        self.app = app
        self.metrics = metrics or http_metrics()
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        answered: float | None = None  # when the last of the body went out

        async def send_status(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = time.perf_counter()

        try:
            await self.app(scope, receive, send_status)
        finally:
            # What the client waited for: work done after the answer (a background task) is not in it.
            elapsed = (answered or time.perf_counter()) - start
            method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED
            self.metrics.observe(method, template, status, elapsed)
            if self.access_log and template not in QUIET_ROUTES:
                access_log.info(
                    "request",
                    extra={
                        "method": method,
                        "route": template,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )


def metrics_endpoint(registry: CollectorRegistry = REGISTRY) -> Callable[[], Awaitable[Response]]:
    async def metrics() -> Response:
        await ops_metrics.refresh()  # the gauges that need the store or the broker (shared.ops_metrics)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


# ---- health ---------------------------------------------------------------------------------

Check = Callable[[], Awaitable[bool] | bool]
CHECK_TIMEOUT_S = 2.0


def readiness_checks(app: FastAPI) -> dict[str, Check]:
    checks = getattr(app.state, "readiness_checks", None)
    if checks is None:
        checks = app.state.readiness_checks = {}
    return checks


def add_readiness_check(app: FastAPI, name: str, check: Check) -> None:
    """Register e.g. `add_readiness_check(app, "mongodb", lambda: ping(db))` in a lifespan."""
    readiness_checks(app)[name] = check


async def _run_check(check: Check) -> bool:
    try:
        result = check()
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, CHECK_TIMEOUT_S)
        return bool(result)
    except Exception:  # a failing check means "not ready", whatever the cause (logged)
        logging.getLogger("shared.health").warning("readiness check failed", exc_info=True)
        return False


def health_router() -> APIRouter:
    """`/healthz`: the loop answers. `/readyz`: started, and every registered check passes."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: MongoDB and AMQP reachable",
        responses={503: {"description": "Not ready (problem+json)"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        checks = readiness_checks(request.app)
        names = list(checks)
        results = await asyncio.gather(*(_run_check(checks[name]) for name in names))
        status = {name: "ok" if ok else "failing" for name, ok in zip(names, results, strict=True)}
        started = bool(getattr(request.app.state, "started", False))
        if started and all(results):
            return JSONResponse({"status": "ready", "checks": status})
        failing = [name for name, ok in zip(names, results, strict=True) if not ok]
        detail = "Not started yet or shutting down." if not started else f"Failing: {', '.join(failing)}."
        return error_response(ServiceUnavailable(detail, checks=status), instance=request.url.path)

    return router
