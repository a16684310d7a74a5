"""Cursor pagination for lists: opaque signed cursors, the Mongo filter for "after this", `Page[T]`.

A cursor is urlsafe base64 (unpadded) of a 16-byte HMAC-SHA256 tag followed by JSON
`{"k": <sort value>, "id": <_id>}` from the last item shown. The tag is keyed with `CURSOR_SECRET`
(`configure_cursors`, called at start-up), so a forged, altered or foreign cursor is refused as a
400 naming `cursor` before anything of it reaches the store.
Pages are ordered by (sort field, _id), so ties on the sort field never skip or repeat an item.
Datetimes travel as `{"$dt": iso}` and ObjectIds as `{"$oid": hex}` so they compare as stored.
Only values the store can hold come back out: 64-bit integers, finite floats, datetimes that
convert to UTC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from bson import ObjectId
from bson.errors import InvalidId
from fastapi import Query
from pydantic import BaseModel, Field

from shared.http import BadRequest

T = TypeVar("T")
log = logging.getLogger("shared.pagination")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_CHARS = 1024
TAG_BYTES = 16  # HMAC-SHA256 truncated to 128 bits (RFC 2104 §5 allows it): shorter cursors, unforgeable
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what BSON can hold; a bigger int is no sort value of ours

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1-200).")]
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS, description="`next_cursor` of the previous page.")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; null on the last.")


class InvalidCursor(BadRequest):
    title, slug = "Invalid cursor", "invalid-cursor"

    def __init__(self) -> None:
        super().__init__(
            "The cursor is malformed; pass back `next_cursor` unchanged.",
            errors=[{"field": "cursor", "location": "query", "reason": "malformed cursor"}],
        )


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, ObjectId):
        return {"$oid": str(value)}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot put a {type(value).__name__} in a cursor")


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"$dt"} and isinstance(value["$dt"], str):
            moment = datetime.fromisoformat(value["$dt"])
            if moment.utcoffset() is not None:
                moment.astimezone(UTC)  # OverflowError near years 1 and 9999: BSON could not store it
            return moment
        if value.keys() == {"$oid"} and isinstance(value["$oid"], str):
            return ObjectId(value["$oid"])
        raise ValueError("unknown cursor value")
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("integer out of range")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not a finite number")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError("unknown cursor value")


class _Keys:
    """The cursor key of this process: random until `configure_cursors` sets the deployment's."""

    key: bytes = secrets.token_bytes(32)


def cursor_key(cursor_secret: str | None, jwt_secret: str | None) -> bytes | None:
    """The key cursors are signed with: `CURSOR_SECRET`, else one derived from the JWT secret (so
    every replica agrees without configuration), else None (the per-process random key stays)."""
    if cursor_secret:
        return hashlib.sha256(b"returns-platform cursor|" + cursor_secret.encode()).digest()
    if jwt_secret:
        return hmac.new(jwt_secret.encode(), b"returns-platform cursor signing key", hashlib.sha256).digest()
    return None


def configure_cursors(cursor_secret: str | None, jwt_secret: str | None) -> None:
    key = cursor_key(cursor_secret, jwt_secret)
    if key is None:
        log.warning(
            "CURSOR_SECRET is not set and there is no JWT_SECRET to derive it from: cursors are signed with a "
            "random key of this process, so another replica (or a restart) refuses them; set CURSOR_SECRET"
        )
        return
    _Keys.key = key


def _tag(raw: bytes) -> bytes:
    return hmac.new(_Keys.key, raw, hashlib.sha256).digest()[:TAG_BYTES]


def sign_cursor(raw: bytes) -> str:
    """The opaque cursor of `raw` (tag + raw, urlsafe base64 without padding)."""
    return base64.urlsafe_b64encode(_tag(raw) + raw).decode().rstrip("=")


def encode_cursor(sort_value: Any, doc_id: Any) -> str:
    raw = json.dumps({"k": _encode_value(sort_value), "id": _encode_value(doc_id)}, separators=(",", ":"))
    return sign_cursor(raw.encode())


def decode_cursor(cursor: str) -> tuple[Any, Any]:
    """(sort value, id) of a cursor; InvalidCursor (400, field `cursor`) if it was forged or tampered with."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        signed = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        tag, raw = signed[:TAG_BYTES], signed[TAG_BYTES:]
        if len(tag) < TAG_BYTES or not hmac.compare_digest(tag, _tag(raw)):
            raise ValueError("not signed by this deployment")
        # Signed by us, so well-formed; still checked: a leaked key must not reach the store.
        data = json.loads(raw)
        if not isinstance(data, dict) or data.keys() != {"k", "id"} or data["id"] is None:
            raise ValueError("not a cursor")
        return _decode_value(data["k"]), _decode_value(data["id"])
    except (ValueError, TypeError, OverflowError, binascii.Error, InvalidId):
        raise InvalidCursor() from None


def page_filter(cursor: str | None, sort_field: str = "created_at", descending: bool = True) -> dict[str, Any]:
    """Mongo filter for the items after `cursor` ({} for the first page); AND it with yours."""
    if not cursor:
        return {}
    value, doc_id = decode_cursor(cursor)
    op = "$lt" if descending else "$gt"
    return {"$or": [{sort_field: {op: value}}, {sort_field: value, "_id": {op: doc_id}}]}


def page_sort(sort_field: str = "created_at", descending: bool = True) -> list[tuple[str, int]]:
    direction = -1 if descending else 1
    return [(sort_field, direction), ("_id", direction)]


def _field(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value[part]
    return value


def make_page(
    docs: Iterable[Mapping[str, Any]],
    limit: int,
    convert: Callable[[Mapping[str, Any]], T],
    *,
    sort_field: str = "created_at",
) -> Page[T]:
    """A page from up to `limit + 1` docs fetched with `page_filter`/`page_sort` (one extra shows more exist)."""
    docs = list(docs)
    more = len(docs) > limit
    docs = docs[:limit]
    next_cursor = encode_cursor(_field(docs[-1], sort_field), docs[-1]["_id"]) if more and docs else None
    return Page[Any](items=[convert(doc) for doc in docs], next_cursor=next_cursor)
