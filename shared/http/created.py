"""The answer to a create: 201 with the new resource and its `Location`, once per Idempotency-Key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shared.idempotency import IdempotentRequest

M = TypeVar("M", bound=BaseModel)

# `responses=` of a create route, so the OpenAPI document shows its Location header (and its ETag,
# for a create answering a versioned resource the caller may change next with If-Match).
LOCATION_RESPONSE: dict[int | str, dict[str, Any]] = {201: {"headers": {"Location": {"schema": {"type": "string"}}}}}
VERSIONED_RESPONSE: dict[int | str, dict[str, Any]] = {
    201: {"headers": {"Location": {"schema": {"type": "string"}}, "ETag": {"schema": {"type": "string"}}}}
}


async def create_once(
    idempotent: IdempotentRequest,
    create: Callable[[], Awaitable[M]],
    location: Callable[[M], str],
    *,
    answer_first: bool = False,
    etag: Callable[[M], str] | None = None,
) -> Response:
    """Run `create` under the request's Idempotency-Key (a retry replays the stored answer) and
    answer 201 with the created resource, `Location: location(created)` and, given `etag`, its
    `ETag`. `answer_first` when a re-run of `create` finds what it made (an id derived from the
    key; shared.idempotency)."""

    async def run() -> Response:
        made = await create()
        headers = {"Location": location(made)} | ({"ETag": etag(made)} if etag else {})
        return JSONResponse(made.model_dump(mode="json"), status_code=201, headers=headers)

    return await idempotent.run(run, status_code=201, answer_first=answer_first)
