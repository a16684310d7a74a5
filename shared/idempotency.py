"""Idempotency-Key for POSTs that create or pay: the first request runs, repeats get its response.

Records live in the service's `idempotency_keys` collection, `_id = "<scope>:<principal>:<key>"`.
Only an insert with a unique `_id` decides who runs (atomic on MongoDB and on the wire-compatible
test servers alike). A running request holds a lease; when a crashed one's lease expires, the next
request deletes that exact record (matched by its token) and races to insert again.

Only successful (2xx) responses are kept. On an error the record is released so the client can
retry, with the same key, the same or a corrected body (as Stripe does for failed validation).
Completed records expire after `retention`; a job calls `purge_expired()` (no TTL indexes).

A request that finds the key in progress waits up to `settle` (250 ms) for that request's answer
before it answers 409. That lets a handler whose effect is idempotent by itself (a create whose id
is derived from the key: a re-run finds what the first made) answer before its answer is stored
(`answer_first`): the write goes out after the response, and a retry in between gets the stored
answer a moment later. Should the process die in between, the lease runs out and a retry runs the
handler again, which finds what the first run made.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError
from starlette.background import BackgroundTask

from shared.auth import CurrentPrincipal, Principal
from shared.clock import Clock, SystemClock
from shared.http import Conflict, Unprocessable, ValidationFailed
from shared.mongo import Database

COLLECTION = "idempotency_keys"
HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_NOT_STORED_HEADERS = frozenset({"content-length", "x-request-id", "date", "server"})
SETTLE_POLL_S = 0.02  # how often a request waiting for another one's answer looks again

log = logging.getLogger("shared.idempotency")


class IdempotencyKeyReused(Unprocessable):
    title, slug = "Idempotency key reused", "idempotency-key-reused"

    def __init__(self, detail: str, **extra: Any) -> None:
        reason = "used before with a different request"
        super().__init__(detail, errors=[{"field": HEADER, "location": "header", "reason": reason}], **extra)


class IdempotencyKeyInProgress(Conflict):
    title, slug = "Request with this idempotency key in progress", "idempotency-key-in-progress"


class InvalidIdempotencyKey(ValidationFailed):
    title = "Invalid idempotency key"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: bytes
    headers: list[tuple[str, str]]

    def to_response(self) -> Response:
        response = Response(content=self.body, status_code=self.status)
        for name, value in self.headers:
            response.headers.append(name, value)
        response.headers[REPLAYED_HEADER] = "true"
        return response


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to run the request: held by exactly one caller until completed or released."""

    id: str
    token: str


def fingerprint(
    body: bytes | str | BaseModel | Mapping[str, Any] | list[Any] | None, *, method: str = "", path: str = ""
) -> str:
    """SHA-256 of method, path and the body as canonical JSON (key order and spacing don't count)."""
    if isinstance(body, BaseModel):
        data: Any = body.model_dump(mode="json")
    elif isinstance(body, bytes | str):
        raw = body.encode() if isinstance(body, str) else body
        try:
            data = json.loads(raw) if raw else None
        except ValueError:  # not JSON: the exact bytes count
            return _sha256(method, path, raw)
    else:
        data = jsonable_encoder(body)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # "surrogatepass": a lone surrogate (valid JSON, "\ud800") is not UTF-8 but must not fail the request.
    return _sha256(method, path, canonical.encode("utf-8", "surrogatepass"))


def _sha256(method: str, path: str, canonical: bytes) -> str:
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


class IdempotencyStore:
    def __init__(
        self,
        db: Database,
        *,
        clock: Clock | None = None,
        lease: timedelta = timedelta(seconds=30),
        retention: timedelta = timedelta(hours=24),
        collection: str = COLLECTION,
        settle: timedelta = timedelta(milliseconds=250),
    ) -> None:
        self.collection = db[collection]
        self.clock = clock or SystemClock()
        self.lease = lease
        self.retention = retention
        self.settle = settle

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("expires_at")

    async def begin(self, scope: str, principal: Principal | str, key: str, fingerprint: str) -> StoredResponse | Claim:
        """A Claim to run the request, or the stored response of the completed one.

        Raises IdempotencyKeyReused (422) for a different body, IdempotencyKeyInProgress (409)
        while another request with this key holds an unexpired lease.
        """
        owner = principal.ref if isinstance(principal, Principal) else principal
        doc_id = f"{scope}:{owner}:{key}"
        for _ in range(5):
            now = self.clock.now()
            token = uuid.uuid4().hex
            try:
                await self.collection.insert_one(
                    {
                        "_id": doc_id,
                        "state": "in_progress",
                        "fingerprint": fingerprint,
                        "token": token,
                        "lease_until": now + self.lease,
                        "created_at": now,
                        "expires_at": now + self.retention,
                    }
                )
                return Claim(doc_id, token)
            except DuplicateKeyError:
                existing = await self._settled(doc_id, fingerprint)
            if existing is None:
                continue  # released in between: race for it again
            if _utc(existing["expires_at"]) <= now:
                await self.collection.delete_one({"_id": doc_id, "token": existing["token"]})
                continue
            if existing["fingerprint"] != fingerprint:
                raise IdempotencyKeyReused(
                    f"This {HEADER} was used with a different request; use a new key.", field=HEADER
                )
            if existing["state"] == "completed":
                stored = existing["response"]
                return StoredResponse(
                    stored["status"], bytes(stored["body"]), [(name, value) for name, value in stored["headers"]]
                )
            lease_until = _utc(existing["lease_until"])
            if lease_until > now:
                wait = max(1, math.ceil((lease_until - now).total_seconds()))
                raise IdempotencyKeyInProgress(
                    f"A request with this {HEADER} is still being processed; retry later.",
                    headers={"Retry-After": str(wait)},
                )
            # The previous holder crashed or stalled: take over its exact record, then race to insert.
            await self.collection.delete_one({"_id": doc_id, "token": existing["token"], "state": "in_progress"})
        raise IdempotencyKeyInProgress(
            f"A request with this {HEADER} is being processed; retry later.", headers={"Retry-After": "1"}
        )

    async def _settled(self, doc_id: str, fingerprint: str) -> dict[str, Any] | None:
        """The record, once it is no longer a live request's or `settle` has passed (a request that
        answered first stores its answer a moment later). Another request's key answers at once."""
        deadline = time.monotonic() + self.settle.total_seconds()
        while True:
            existing: dict[str, Any] | None = await self.collection.find_one({"_id": doc_id})
            if (
                existing is None
                or existing["state"] != "in_progress"
                or existing["fingerprint"] != fingerprint
                or _utc(existing["lease_until"]) <= self.clock.now()
                or time.monotonic() >= deadline
            ):
                return existing
            await asyncio.sleep(SETTLE_POLL_S)

    async def complete(self, claim: Claim, status: int, body: bytes, headers: list[tuple[str, str]]) -> bool:
        """Store the response; False if the lease was lost meanwhile (took longer than `lease`)."""
        now = self.clock.now()
        result = await self.collection.update_one(
            {"_id": claim.id, "token": claim.token, "state": "in_progress"},
            {
                "$set": {
                    "state": "completed",
                    "completed_at": now,
                    "expires_at": now + self.retention,
                    "response": {"status": status, "body": body, "headers": [[name, value] for name, value in headers]},
                }
            },
        )
        return result.matched_count == 1

    async def release(self, claim: Claim) -> None:
        await self.collection.delete_one({"_id": claim.id, "token": claim.token, "state": "in_progress"})

    async def purge_expired(self) -> int:
        result = await self.collection.delete_many({"expires_at": {"$lte": self.clock.now()}})
        return result.deleted_count


def _as_response(result: Any, status_code: int) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    return JSONResponse(jsonable_encoder(result), status_code=status_code)


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path_format", None) or getattr(route, "path", None) or request.url.path


def check_key(key: str) -> str:
    if not 1 <= len(key) <= 255 or not all("!" <= char <= "~" for char in key):
        raise InvalidIdempotencyKey(
            f"{HEADER} must be 1-255 visible ASCII characters.",
            errors=[{"field": HEADER, "location": "header", "reason": "1-255 visible ASCII characters"}],
        )
    return key


async def run_idempotent(
    store: IdempotencyStore,
    request: Request,
    principal: Principal | str,
    key: str | None,
    handler: Callable[[], Awaitable[Any]],
    *,
    status_code: int = 200,
    scope: str | None = None,
    answer_first: bool = False,
) -> Response:
    """Run `handler` once per (scope, principal, key); repeats get the stored response.

    `handler` returns a Response, a pydantic model or JSON-able data (sent with `status_code`).
    Without a key the handler simply runs. `answer_first`: the answer is stored once it has been sent
    (only for a handler that a re-run after a crash finds done: see the module docstring).
    """
    if key is None:
        return _as_response(await handler(), status_code)
    check_key(key)
    body_print = fingerprint(await request.body(), method=request.method, path=request.url.path)
    outcome = await store.begin(scope or f"{request.method} {_route_template(request)}", principal, key, body_print)
    if isinstance(outcome, StoredResponse):
        return outcome.to_response()
    try:
        response = _as_response(await handler(), status_code)
    except BaseException:
        await store.release(outcome)
        raise
    if 200 <= response.status_code < 300:
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in response.raw_headers
            if name.decode("latin-1").lower() not in _NOT_STORED_HEADERS
        ]
        store_answer = partial(_store_answer, store, outcome, response.status_code, bytes(response.body), headers)
        if answer_first and response.background is None:
            response.background = BackgroundTask(store_answer)  # run once the response is sent
        else:
            await store_answer()
    else:
        await store.release(outcome)
    return response


async def _store_answer(
    store: IdempotencyStore, claim: Claim, status: int, body: bytes, headers: list[tuple[str, str]]
) -> None:
    try:
        if not await store.complete(claim, status, body, headers):
            log.warning("idempotency lease lost before completion", extra={"claim": claim.id})
    except Exception:  # the effect happened; answer it, even if a retry may not be recognised
        log.exception("could not store idempotent response", extra={"claim": claim.id})


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=255,
        description="Makes the POST safe to retry: the same key with the same body returns the first "
        "response; with a different body it is refused (422).",
    ),
]


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    store: IdempotencyStore
    request: Request
    principal: Principal
    key: str | None

    async def run(
        self,
        handler: Callable[[], Awaitable[Any]],
        *,
        status_code: int = 200,
        scope: str | None = None,
        answer_first: bool = False,
    ) -> Response:
        return await run_idempotent(
            self.store,
            self.request,
            self.principal,
            self.key,
            handler,
            status_code=status_code,
            scope=scope,
            answer_first=answer_first,
        )


async def idempotent_request(
    request: Request, principal: CurrentPrincipal, key: IdempotencyKeyHeader = None
) -> IdempotentRequest:
    store = getattr(request.app.state, "idempotency", None)
    if store is None:
        raise RuntimeError("app.state.idempotency is not set: create an IdempotencyStore in the lifespan")
    return IdempotentRequest(store, request, principal, None if key is None else check_key(key))


Idempotent = Annotated[IdempotentRequest, Depends(idempotent_request)]
