"""415 for a request body that is not JSON (pure ASGI, headers only: no cost beyond a header scan).

Every operation of the platform takes JSON: `application/json` or any `+json` type
(`application/cloudevents+json`, `application/merge-patch+json`). A body with another declared type
is refused before any handler runs, with `Accept` naming what is accepted (RFC 9110 §15.5.16). A
body without Content-Type declares no other type and is left to the route (routes that verify a
raw body, such as signed webhooks, read it; a JSON body parameter answers 422 naming `body`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.http.problems import UnsupportedMediaType, error_response

ACCEPTED = "application/json, application/*+json"


def is_json(content_type: bytes) -> bool:
    essence = content_type.split(b";", 1)[0].strip().lower()
    return essence == b"application/json" or (essence.startswith(b"application/") and essence.endswith(b"+json"))


class JsonBodyMiddleware:
    """Refuses a non-JSON request body with 415 problem+json naming the accepted media types."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            content_type, has_body = None, False
            for name, value in scope["headers"]:
                if name == b"content-type":
                    content_type = value
                elif name == b"content-length":
                    has_body = has_body or value.strip() not in (b"0", b"")
                elif name == b"transfer-encoding":
                    has_body = True
            if has_body and content_type is not None and not is_json(content_type):
                refused = UnsupportedMediaType(
                    f"The request body must be JSON ({ACCEPTED}), not {content_type.decode('latin-1')[:100]}.",
                    headers={"Accept": ACCEPTED},
                    accepted=["application/json", "application/*+json"],
                    errors=[{"field": "Content-Type", "location": "header", "reason": "not a JSON media type"}],
                )
                await error_response(refused, instance=scope.get("path"))(scope, receive, send)
                return
        await self.app(scope, receive, send)
