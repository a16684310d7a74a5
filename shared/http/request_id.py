"""Request ids: accept a sane `X-Request-ID` or make one, echo it, and expose it to logs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_REQUEST_ID_OK = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def sane(candidate: str | None) -> str | None:
    """`candidate` if it is a request id we may log and pass on (1-128 of A-Z a-z 0-9 . _ : -), else None."""
    return candidate if candidate is not None and _REQUEST_ID_OK.fullmatch(candidate) else None


def current_request_id() -> str | None:
    """The id of the request being served (None outside a request)."""
    return _request_id.get()


class RequestIdMiddleware:
    """Accept a sane `X-Request-ID` or make one; expose it to logs and echo it in the response."""

    def __init__(self, app: ASGIApp, header: str = "x-request-id") -> None:
        self.app = app
        self.header = header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == self.header:
                # Anything else (log injection, huge values) is replaced, not trusted.
                request_id = sane(value.decode("latin-1"))
                break
        request_id = request_id or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        encoded = request_id.encode("latin-1")
        header = self.header

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0] != header]
                headers.append((header, encoded))
                message["headers"] = headers
            await send(message)

        token = _request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)


@contextmanager
def request_id_scope(request_id: str | None) -> Iterator[None]:
    """Work caused by a request, done elsewhere (a consumer handling its event), logs its id too.
    The id comes from an event, maybe another system's: one that is not sane is dropped, not passed on."""
    token = _request_id.set(sane(request_id))
    try:
        yield
    finally:
        _request_id.reset(token)
