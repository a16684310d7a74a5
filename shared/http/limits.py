"""The request-body size limit: 413 problem+json before the handler runs (pure ASGI)."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import PayloadTooLarge, StartTracker, error_response


class _BodyTooLarge(PayloadTooLarge, HTTPException):  # type: ignore[misc]  # both on purpose; they type detail, headers apart
    """Raised from `receive`. Also an HTTPException so FastAPI's body parsing lets it through;
    the ProblemError handler (first in its MRO) answers it like the up-front check."""

    def __init__(self, limit: int) -> None:
        PayloadTooLarge.__init__(self, f"The request body exceeds the limit of {limit} bytes.", limit=limit)
        self.status_code = self.status


class BodyLimitMiddleware:
    """413 before the handler runs: by Content-Length up front, by counting streamed chunks."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    def _too_large(self, scope: Scope) -> JSONResponse:
        return error_response(_BodyTooLarge(self.limit), instance=scope.get("path"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > limit:
                    await self._too_large(scope)(scope, receive, send)
                    return
                break
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        tracked = StartTracker(send)
        try:
            await self.app(scope, counting_receive, tracked)
        except _BodyTooLarge:
            if tracked.started:
                raise
            await self._too_large(scope)(scope, receive, send)
