"""RFC 9457 problem details: the error classes domain code raises and the handlers that map
every error (domain, validation, routing, unexpected) to `application/problem+json`."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.methods import allowed_methods
from shared.http.request_id import current_request_id

PROBLEM_BASE = "https://returns-platform.dev/problems/"
PROBLEM_JSON = "application/problem+json"

log = logging.getLogger("shared.http")


def problem_type(slug: str | None) -> str:
    return f"{PROBLEM_BASE}{slug}" if slug else "about:blank"


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending input, e.g. `lines[0].quantity`.")
    location: str | None = Field(default=None, description="body, query, path or header")
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error response of the platform carries them."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """An error with an HTTP meaning. Subclass it per domain error; set `slug` and `title`.

    `extra` members (e.g. `field="lines[0].quantity"`) are added to the problem document.
    """

    status: int = 500
    title: str = "Internal Server Error"
    slug: ClassVar[str | None] = "internal-error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        title: str | None = None,
        type: str | None = None,  # noqa: A002 - RFC 9457 name
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title or self.title)
        self.detail = detail
        self.status = status or self.__class__.status
        self.title = title or self.__class__.title
        self.type = type or problem_type(self.__class__.slug)
        self.headers = dict(headers or {})
        self.extra = extra


class BadRequest(ProblemError):
    status, title, slug = 400, "Bad Request", "bad-request"


class Unauthorized(ProblemError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str | None = None, *, error: str | None = "invalid_token", **kwargs: Any) -> None:
        challenge = f'Bearer error="{error}"' if error else "Bearer"
        headers = {"WWW-Authenticate": challenge, **kwargs.pop("headers", {})}
        super().__init__(detail, headers=headers, **kwargs)


class Forbidden(ProblemError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(ProblemError):
    status, title, slug = 404, "Not Found", "not-found"


class Conflict(ProblemError):
    status, title, slug = 409, "Conflict", "conflict"


class PreconditionFailed(ProblemError):
    """A stale `If-Match` (RFC 9110 §13.1.1): the caller based the change on a representation
    that is no longer current. Distinct from 409, which a conflict found without a precondition answers."""

    status, title, slug = 412, "Precondition Failed", "precondition-failed"


class PayloadTooLarge(ProblemError):
    status, title, slug = 413, "Content Too Large", "payload-too-large"


class UnsupportedMediaType(ProblemError):
    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


class Unprocessable(ProblemError):
    """A 422 always names the offending fields: `errors` is required (list of {field, location, reason})."""

    status, title, slug = 422, "Unprocessable Content", "unprocessable"

    def __init__(self, detail: str | None = None, *, errors: Sequence[Mapping[str, Any]], **kwargs: Any) -> None:
        if not errors:
            raise TypeError(f"{type(self).__name__} needs `errors` naming the offending fields")
        super().__init__(detail, errors=errors, **kwargs)


class ValidationFailed(Unprocessable):
    """Input that fails validation, found by the framework (pydantic) or by the handler itself."""

    title, slug = "Validation failed", "validation-error"


class ServiceUnavailable(ProblemError):
    status, title, slug = 503, "Service Unavailable", "service-unavailable"


def field_problems(problems: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """`detail` and `errors` of a 422 that names each (field, reason) of the request body:
    `raise RuleViolation(**field_problems([("lines[0].quantity", "more than ordered")]))`."""
    listed = list(problems)
    return {
        "detail": "; ".join(f"{field}: {reason}" for field, reason in listed),
        "errors": [{"field": field, "location": "body", "reason": reason} for field, reason in listed],
    }


def problem_response(
    status: int,
    title: str,
    *,
    detail: str | None = None,
    type: str = "about:blank",  # noqa: A002 - RFC 9457 name
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type, "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    body["request_id"] = current_request_id()
    for key, value in extra.items():
        body.setdefault(key, jsonable_encoder(value))  # e.g. a Money member
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


def error_response(exc: ProblemError, instance: str | None = None) -> JSONResponse:
    return problem_response(
        exc.status, exc.title, detail=exc.detail, type=exc.type, instance=instance, headers=exc.headers, **exc.extra
    )


def field_path(loc: tuple[Any, ...] | list[Any]) -> tuple[str | None, str]:
    """("body", "lines", 0, "quantity") -> ("body", "lines[0].quantity")."""
    location = str(loc[0]) if loc and loc[0] in ("body", "query", "path", "header", "cookie") else None
    parts = loc[1:] if location else loc
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return location, path or location or "body"


def validation_errors(errors: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic/FastAPI errors as [{field, location, reason}]; the input itself is never echoed."""
    out = []
    for error in errors:
        location, path = field_path(tuple(error.get("loc", ())))
        out.append({"field": path, "location": location, "reason": str(error.get("msg", "invalid"))})
    return out


_STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "unprocessable",
    429: "too-many-requests",
}


async def _problem_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ProblemError):  # registered for ProblemError only
        raise exc
    return error_response(exc, instance=request.url.path)


# FastAPI's own 400 for a body it cannot decode (not UTF-8): answered like any malformed JSON.
_UNPARSABLE_BODY = "There was an error parsing the body"


def _malformed_json(request: Request, reason: str) -> JSONResponse:
    return problem_response(
        400,
        "Malformed JSON body",
        type=problem_type("malformed-json"),
        detail=f"The request body is not valid JSON: {reason}.",
        instance=request.url.path,
        errors=[{"field": "body", "location": "body", "reason": reason}],
    )


async def _http_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    status = exc.status_code
    if status == 400 and exc.detail == _UNPARSABLE_BODY:
        return _malformed_json(request, "not readable as JSON text (e.g. not UTF-8)")
    phrase = _phrase(status)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    headers = dict(exc.headers or {})
    if status == 405:
        headers["Allow"] = allowed_methods(request)
    return problem_response(
        status,
        phrase,
        detail=detail,
        type=problem_type(_STATUS_SLUGS.get(status)),
        instance=request.url.path,
        headers=headers,
    )


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # registered for RequestValidationError only
        raise exc
    errors = list(exc.errors())
    malformed = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if malformed is not None:
        reason = (malformed.get("ctx") or {}).get("error", "invalid JSON")
        loc = malformed.get("loc", ())
        where = f" at position {loc[1]}" if len(loc) > 1 and isinstance(loc[1], int) else ""
        return _malformed_json(request, f"{reason}{where}")
    failed = ValidationFailed(
        "The request has invalid or missing fields; see `errors`.", errors=validation_errors(errors)
    )
    return error_response(failed, instance=request.url.path)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install_problem_handlers(app: FastAPI) -> None:
    """Map ProblemError, HTTPException and validation errors to problem+json.

    Unexpected exceptions are turned into a 500 problem by `UnhandledErrorMiddleware`, which
    sits inside the request-id and metrics middlewares so those still see the response.
    """
    app.add_exception_handler(ProblemError, _problem_error_handler)
    app.add_exception_handler(HTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)


class StartTracker:
    """`send` that remembers whether the response has started: after that an error can no longer
    be answered with a problem document, only re-raised."""

    def __init__(self, send: Send) -> None:
        self._send, self.started = send, False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class UnhandledErrorMiddleware:
    """Last line of defence: log the traceback, answer a 500 problem that leaks nothing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = StartTracker(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unhandled error", extra={"method": scope.get("method"), "path": scope.get("path")})
            if tracked.started:
                raise
            response = problem_response(
                500,
                "Internal Server Error",
                type=problem_type("internal-error"),
                detail="An unexpected error occurred. Quote the request_id when reporting it.",
                instance=scope.get("path"),
            )
            await response(scope, receive, send)
