"""The `Allow` header of a 405: every method the request's path supports, across all its routes.

Starlette answers 405 from the first route whose path matched (and FastAPI's included routers
name none), so a path served by several routes (GET by one endpoint, POST by another) needs the
whole route table (RFC 9110 §15.5.6)."""

from __future__ import annotations

import re

from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.routing import compile_path

_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _table(request: Request) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """(path pattern, methods) of every HTTP route, built on the first 405 (never on the hot path)."""
    table = getattr(request.app.state, "allow_table", None)
    if table is None:
        table = [
            (compile_path(ctx.path)[0], frozenset(ctx.methods))
            for ctx in iter_route_contexts(request.app.routes)
            if ctx.path and ctx.methods
        ]
        request.app.state.allow_table = table
    return table


def allowed_methods(request: Request) -> str:
    """`Allow` value for the request's path."""
    path = request.scope["path"]
    methods = {method for pattern, listed in _table(request) if pattern.match(path) for method in listed}
    if "GET" in methods:
        methods.add("HEAD")  # Starlette serves HEAD wherever GET is
    return ", ".join(sorted(methods, key=lambda m: (_ORDER.index(m) if m in _ORDER else len(_ORDER), m)))
