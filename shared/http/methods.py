"""Methods: the `Allow` header of a 405, and HEAD wherever GET is served.

Starlette answers 405 from the first route whose path matched (and FastAPI's included routers
name none), so a path served by several routes (GET by one endpoint, POST by another) needs the
whole route table (RFC 9110 §15.5.6). FastAPI's routes take only the methods they name, so HEAD
(RFC 9110 §9.3.2: GET's headers without its body) is served by `HeadMiddleware`."""

from __future__ import annotations

import re

from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
        methods.add("HEAD")  # HeadMiddleware serves HEAD wherever GET is
    return ", ".join(sorted(methods, key=lambda m: (_ORDER.index(m) if m in _ORDER else len(_ORDER), m)))


class HeadMiddleware:
    """A HEAD request runs as the GET it names and answers its status and headers (Content-Length,
    ETag included) without the body. Outer middlewares still see HEAD (they get the scope as sent)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
