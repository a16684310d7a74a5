"""What a service's OpenAPI document adds to FastAPI's: readable operationIds, `servers`, and every
status and response header the shared machinery answers with, so generated clients don't crash on them.

FastAPI documents what a route declares; the statuses and headers below come from code every route
shares (middlewares, dependencies), so they are added here from what the operation takes:

- every response: `X-Request-ID` (RequestIdMiddleware echoes or makes one on every answer);
- a request body: 413 (BodyLimitMiddleware), 415 (not JSON), 422 (validation);
- `If-Match`: 409 (transition not allowed, or changed concurrently), 412 (stale ETag), and its 200
  carries the new `ETag`;
- `Idempotency-Key`: 409 (a request with the key is in progress, with `Retry-After`) and its 2xx carry
  `Idempotent-Replayed: true` when replayed; a route that refuses to run without a key says so with
  `openapi_extra=IDEMPOTENCY_KEY_REQUIRED` and the parameter is marked required;
- a path parameter: 404 (no such resource, or not the caller's), except on PUTs that store what they
  are given (an order snapshot, a seller's policy) and routes marked `openapi_extra=ANSWERS_ANY_ID`;
- a `cursor` query parameter: 400 (a cursor this service did not issue).
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute

# `openapi_extra=` of a route that answers 422 without an Idempotency-Key: the document marks it required.
_REQUIRED_MARKER = "x-idempotency-key-required"
IDEMPOTENCY_KEY_REQUIRED: dict[str, Any] = {_REQUIRED_MARKER: True}
# `openapi_extra=` of a route with a path parameter that answers for any id (a default, never 404).
_ANY_ID_MARKER = "x-answers-any-id"
ANSWERS_ANY_ID: dict[str, Any] = {_ANY_ID_MARKER: True}

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The caller's X-Request-ID when it is sane (1-128 of A-Z a-z 0-9 . _ : -), else a new one.",
        "schema": {"type": "string"},
    },
    "ETag": {"description": 'The return\'s version, e.g. "3": send it back as If-Match.', "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Location": {"description": "Where the created resource is.", "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}},
}

_ADDED: dict[str, str] = {
    "400": "A `cursor` this service did not issue, or altered.",
    "404": "No such resource, or not one the caller may see.",
    "409": "Not allowed in the resource's current state, changed concurrently, or a request with the same "
    "Idempotency-Key is still in progress (see Retry-After).",
    "412": "If-Match names a version that is no longer current: reload and retry.",
    "413": "The request body is larger than the service accepts.",
    "415": "The request body is not application/json.",
}


def operation_id(route: APIRoute) -> str:
    """The endpoint function's name in camelCase: `create_return` -> `createReturn`."""
    head, *rest = route.name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _add_status(responses: dict[str, Any], status: str, problem: dict[str, Any]) -> None:
    if status not in responses:
        responses[status] = {"description": _ADDED[status], "content": problem}


def complete_operation(path: str, method: str, operation: dict[str, Any], problem: dict[str, Any]) -> None:
    """Add the statuses and headers the shared machinery answers `operation` with (see the module doc)."""
    responses: dict[str, Any] = operation["responses"]
    parameters = operation.get("parameters", [])
    headers = {p["name"] for p in parameters if p.get("in") == "header"}
    queries = {p["name"] for p in parameters if p.get("in") == "query"}
    if operation.pop(_REQUIRED_MARKER, False):
        for parameter in parameters:
            if parameter["name"] == "Idempotency-Key":
                parameter["required"] = True
                parameter["schema"] = {"type": "string", "minLength": 1, "maxLength": 255}
    if "requestBody" in operation:
        for status in ("413", "415"):
            _add_status(responses, status, problem)
        if "400" not in responses:  # malformed-json (shared/http/problems.py); a cursor's 400 is another route's
            responses["400"] = {"description": "The request body is not valid JSON.", "content": problem}
    any_id = operation.pop(_ANY_ID_MARKER, False)
    if "{" in path and not any_id and (method != "put" or "If-Match" in headers):
        _add_status(responses, "404", problem)
    if "cursor" in queries:
        _add_status(responses, "400", problem)
    if "If-Match" in headers or "Idempotency-Key" in headers:
        _add_status(responses, "409", problem)
    if "If-Match" in headers:
        _add_status(responses, "412", problem)
        if "200" in responses:
            responses["200"].setdefault("headers", {})["ETag"] = _ref("ETag")
    for status, response in responses.items():
        added = response.setdefault("headers", {})
        for name in ("Location", "ETag", "Retry-After"):  # declared by the route: the shared description
            if name in added:
                added[name] = _ref(name)
        if "Idempotency-Key" in headers and status.startswith("2"):
            added["Idempotent-Replayed"] = _ref("Idempotent-Replayed")
        if "Idempotency-Key" in headers and status == "409":
            added["Retry-After"] = _ref("Retry-After")
        added["X-Request-ID"] = _ref("X-Request-ID")
    operation["responses"] = dict(sorted(responses.items(), key=lambda item: (item[0] == "default", item[0])))


def complete_document(document: dict[str, Any], servers: list[dict[str, str]], problem: dict[str, Any]) -> None:
    """Add `servers`, the shared headers and each operation's shared statuses and headers, in place."""
    document["servers"] = servers
    document.setdefault("components", {})["headers"] = dict(HEADERS)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                complete_operation(path, method, operation, problem)
