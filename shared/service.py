"""The one way a service builds its FastAPI app: logs, errors, middlewares, health, metrics, auth.

    def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
        return create_database_service_app(settings or Settings(), clock, wiring,
                                           title="Returns", description=DESCRIPTION, routers=[api.router])

`create_database_service_app` is `create_service_app` for a service over its own MongoDB database:
it connects, registers the `mongodb` readiness check, opens `app.state.idempotency`, then enters
the service's `wiring(app, db, settings, clock)` (its stores, messaging and jobs).

`lifespan` factories (one or a list, entered in order, left in reverse) take the app and are
async context managers; they keep what they open on `app.state` and register readiness checks
with `add_readiness_check(app, "mongodb", lambda: ping(db))`. The `amqp` check is this module's:
once the factories are in, an EventBus on `app.state.bus` is checked with `bus.is_connected`
(connected at this instant, not merely "not closed" while it reconnects).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, TypeVar

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi

from shared import heap, marketplaces, tracing
from shared.auth import Role, TokenVerifier, require_roles
from shared.bus import EventBus
from shared.clock import Clock, clock_from_env
from shared.deadletters import dead_letter_router
from shared.http import (
    PROBLEM_JSON,
    BodyLimitMiddleware,
    JsonBodyMiddleware,
    Problem,
    RequestIdMiddleware,
    UnhandledErrorMiddleware,
    install_problem_handlers,
)
from shared.http.methods import HeadMiddleware
from shared.idempotency import IdempotencyStore
from shared.marketplaces_api import marketplaces_router
from shared.mongo import Database, connect, ping
from shared.observability import (
    Check,
    HttpMetrics,
    MetricsMiddleware,
    add_readiness_check,
    configure_logging,
    health_router,
    metrics_endpoint,
)
from shared.openapi import complete_document, operation_id
from shared.pagination import configure_cursors
from shared.settings import CommonSettings

LifespanFactory = Callable[[FastAPI], AbstractAsyncContextManager[Any]]
S = TypeVar("S", bound=CommonSettings)
# A service's wiring over its database: (app, db, settings, clock) -> entered while the app runs.
Wiring = Callable[[FastAPI, Database, S, Clock], AbstractAsyncContextManager[None]]

log = logging.getLogger("shared.service")


class ServiceApp(FastAPI):
    """A service's app: its OpenAPI document describes errors as problem+json."""

    def openapi(self) -> dict[str, Any]:
        return _openapi_with_problems(self)


def create_service_app(
    settings: CommonSettings,
    *,
    title: str,
    version: str = "0.1.0",
    description: str = "",
    routers: Sequence[APIRouter] = (),
    lifespan: LifespanFactory | Sequence[LifespanFactory] | None = None,
    readiness_checks: Mapping[str, Check] | None = None,
    verifier: TokenVerifier | None = None,
    metrics: HttpMetrics | None = None,
    configure_logs: bool = True,
    access_log: bool = True,
) -> FastAPI:
    if configure_logs:
        configure_logging(settings.service_name, settings.log_level)
    tracing.configure(settings.service_name, settings.otel_exporter_otlp_endpoint)
    # A bad marketplaces file stops the service here, naming the key (MarketplaceConfigError).
    served = marketplaces.load(settings.marketplaces_file)
    if settings.default_marketplace not in served:
        raise marketplaces.MarketplaceConfigError(
            f"default_marketplace: {settings.default_marketplace!r} is not in the marketplaces file"
        )
    marketplaces.install(served)
    factories = [] if lifespan is None else [lifespan] if callable(lifespan) else list(lifespan)

    @asynccontextmanager
    async def service_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any] | None]:
        state: dict[str, Any] = {}
        async with AsyncExitStack() as stack:
            for factory in factories:
                value = await stack.enter_async_context(factory(app))
                if isinstance(value, Mapping):
                    state.update(value)
            bus = getattr(app.state, "bus", None)
            if isinstance(bus, EventBus):  # replaces any weaker check a service registered itself
                add_readiness_check(app, "amqp", bus.is_connected)
            app.state.started = True
            heap.settle()  # start-up's objects are never garbage: stop rescanning them
            log.info("service started", extra={"version": version})
            try:
                yield state or None
            finally:
                app.state.started = False
                log.info("service stopping")

    # Starlette takes a lifespan that yields state or None (None when there is none: not every server
    # supports lifespan state); FastAPI's type admits one or the other.
    app = ServiceApp(
        title=title,
        version=version,
        description=description,
        lifespan=service_lifespan,  # type: ignore[arg-type]  # yields state or None, see above
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.started = False
    # Fails at start-up, not on the first request, when the key or algorithm is misconfigured.
    app.state.token_verifier = verifier or TokenVerifier.from_settings(settings)
    configure_cursors(settings.cursor_secret, settings.jwt_secret)
    for name, check in (readiness_checks or {}).items():
        add_readiness_check(app, name, check)

    install_problem_handlers(app)
    # add_middleware wraps: the last added runs first. Request -> TraceContext -> RequestId -> Metrics ->
    # UnhandledError -> JsonBody -> BodyLimit -> Head -> FastAPI's exception handlers -> routes.
    app.add_middleware(HeadMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(JsonBodyMiddleware)  # 415 before the body is read
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics, access_log=access_log)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(tracing.TraceContextMiddleware)  # outermost: the access log line has the trace id
    tracing.instrument_app(app)

    app.include_router(health_router())
    app.include_router(marketplaces_router())
    app.add_api_route("/metrics", metrics_endpoint(), methods=["GET"], include_in_schema=False)
    for router in routers:
        app.include_router(router)
    # Every service consumes events: operators list and replay what it parked (docs/product.md §7). The
    # service's lifespan puts its EventBus on app.state.bus.
    app.include_router(dead_letter_router(lambda: app.state.bus, require_roles(Role.AGENT)))
    return app


def create_database_service_app(
    settings: S,
    clock: Clock | None,
    wiring: Wiring[S],
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    idempotency: bool = True,
) -> FastAPI:
    """A service over its own MongoDB database, version 1.0.0: its lifespan connects, has /readyz ping
    the database, opens `app.state.idempotency` (unless `idempotency=False`), enters
    `wiring(app, db, settings, clock)` (the service's stores, messaging and jobs) and closes the client
    on leaving. `clock` defaults to the one `settings.clock_file` names."""
    business_clock = clock or clock_from_env(settings.clock_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client, db = connect(settings.mongodb_url, settings.database_name)
        try:
            add_readiness_check(app, "mongodb", partial(ping, db))
            if idempotency:
                app.state.idempotency = IdempotencyStore(db, clock=business_clock)
                await app.state.idempotency.ensure_indexes()
            async with wiring(app, db, settings, business_clock):
                yield
        finally:
            client.close()

    return create_service_app(
        settings, title=title, version="1.0.0", description=description, routers=routers, lifespan=lifespan
    )


def server_options(settings: CommonSettings) -> dict[str, Any]:
    """How `python -m services.<name>` serves its app (`uvicorn.run(app, **server_options(settings))`):
    host and port, our own JSON logs (no uvicorn log config), and idle keep-alive connections held
    `HTTP_KEEP_ALIVE_S`. uvicorn's own 5 s equals httpx's idle limit, so a client sending on a
    connection just as the server closed it got a reset instead of an answer."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "timeout_keep_alive": settings.http_keep_alive_s,
    }


def serve(app: FastAPI, settings: CommonSettings) -> None:
    uvicorn.run(app, **server_options(settings))


def _problem_response(description: str, schema: str = "Problem") -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with errors documented as problem+json instead of its own 422 shape."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for name, definition in schemas["Problem"].pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if "422" in responses:
                responses["422"] = _problem_response("Validation failed: `errors` names each field.")
            if operation.get("security"):
                responses.setdefault("401", _problem_response("Missing, expired or invalid bearer token."))
                responses.setdefault("403", _problem_response("The caller's role may not do this."))
            for code, response in responses.items():
                if code[0] in "45" and "content" not in response:
                    response["content"] = _problem_response("")["content"]
            responses.setdefault("default", _problem_response("Any other error, as RFC 9457 problem+json."))
    settings: CommonSettings = app.state.settings
    server = settings.public_base_url or f"http://localhost:{settings.port}"
    complete_document(schema, [{"url": server.rstrip("/")}], _problem_response("")["content"])
    app.openapi_schema = schema
    return schema
