"""Opaque cursors, the "after this item" filter, and Page[T]."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from bson import ObjectId
from fastapi import APIRouter
from pydantic import BaseModel

from shared.pagination import (
    Cursor,
    InvalidCursor,
    Limit,
    Page,
    configure_cursors,
    cursor_key,
    decode_cursor,
    encode_cursor,
    make_page,
    page_filter,
    page_sort,
    sign_cursor,
)
from shared.service import create_service_app
from shared.settings import CommonSettings

AT = datetime(2025, 3, 1, 12, 30, 15, 123000, tzinfo=UTC)


@pytest.mark.parametrize(("value", "doc_id"), [(AT, "r-1"), (42, "r-2"), (1.5, 7), ("B0001", ObjectId()), (None, "x")])
def test_cursor_round_trips_typed_values(value, doc_id):
    cursor = encode_cursor(value, doc_id)
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert decode_cursor(cursor) == (value, doc_id)


def test_the_extremes_the_store_can_hold_still_decode():
    for value in (2**63 - 1, -(2**63), True):
        assert decode_cursor(encode_cursor(value, "r"))[0] == value


def test_datetime_keeps_its_utc_offset():
    decoded, _ = decode_cursor(encode_cursor(AT, "r-1"))
    assert decoded.tzinfo is not None and decoded == AT


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


TAMPERED = [
    "!!!not-base64!!!",
    b64("not json"),
    b64("[1, 2]"),
    b64(json.dumps({"k": 1})),
    b64(json.dumps({"k": 1, "id": "r", "extra": True})),
    b64(json.dumps({"k": {"$dt": "yesterday"}, "id": "r"})),
    b64(json.dumps({"k": {"$where": "sleep(1000)"}, "id": "r"})),
    b64(json.dumps({"k": 1, "id": {"$oid": "nope"}})),
    b64(json.dumps({"k": [1], "id": "r"})),
    b64(json.dumps({"k": 1, "id": None})),
    "A" * 5000,
    b64(json.dumps({"k": 2**63, "id": "r"})),  # beyond what BSON holds: a 500 at the store otherwise
    b64(json.dumps({"k": -(2**63) - 1, "id": "r"})),
    b64(json.dumps({"k": 1, "id": 10**30})),
    b64('{"k": NaN, "id": "r"}'),
    b64('{"k": Infinity, "id": "r"}'),
    b64(json.dumps({"k": {"$dt": "0001-01-01T00:00:00+14:00"}, "id": "r"})),
    b64(json.dumps({"k": {"$dt": "9999-12-31T23:59:59-14:00"}, "id": "r"})),
]


def signed(cursor: str) -> str:
    """The same payload with a valid tag: what a leaked key could forge."""
    try:
        return sign_cursor(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        return cursor


# Ids by position: the cursors' bytes come from a random key, and pytest-xdist's workers must collect
# the same test ids.
TAMPERED_CASES = [pytest.param(c, id=f"tampered-{i}") for i, c in enumerate(TAMPERED)] + [
    pytest.param(signed(c), id=f"signed-{i}") for i, c in enumerate(TAMPERED) if c != "A" * 5000
]


@pytest.mark.parametrize("cursor", TAMPERED_CASES)
def test_tampered_cursor_is_a_400_naming_the_cursor(cursor):
    with pytest.raises(InvalidCursor) as caught:
        decode_cursor(cursor)
    assert caught.value.status == 400
    assert caught.value.extra["errors"][0]["field"] == "cursor"


def test_cursors_are_opaque_and_signed():
    cursor = encode_cursor(AT, "r-1")
    assert "r-1" not in cursor and re.fullmatch(r"[A-Za-z0-9_-]+", cursor)
    unsigned = b64(json.dumps({"k": {"$dt": AT.isoformat()}, "id": "r-1"})).rstrip("=")
    with pytest.raises(InvalidCursor):  # the old, unsigned form is a forgery now
        decode_cursor(unsigned)
    for at in range(len(cursor)):  # any altered character: the tag no longer matches
        flipped = cursor[:at] + ("A" if cursor[at] != "A" else "B") + cursor[at + 1 :]
        with pytest.raises(InvalidCursor):
            decode_cursor(flipped)


def test_a_cursor_signed_with_another_key_is_refused():
    configure_cursors("one deployment", None)
    theirs = encode_cursor(AT, "r-1")
    configure_cursors("another deployment", None)
    with pytest.raises(InvalidCursor):
        decode_cursor(theirs)
    assert decode_cursor(encode_cursor(AT, "r-1")) == (AT, "r-1")


def test_cursor_key_comes_from_the_setting_else_the_jwt_secret():
    assert cursor_key("c", "j") == cursor_key("c", None) != cursor_key(None, "j")
    assert cursor_key(None, "j") == cursor_key(None, "j") != cursor_key(None, "k")
    assert cursor_key(None, None) is None


def test_page_filter_descending_and_ascending():
    cursor = encode_cursor(AT, "r-9")
    assert page_filter(cursor) == {"$or": [{"created_at": {"$lt": AT}}, {"created_at": AT, "_id": {"$lt": "r-9"}}]}
    assert page_filter(cursor, "updated_at", descending=False) == {
        "$or": [{"updated_at": {"$gt": AT}}, {"updated_at": AT, "_id": {"$gt": "r-9"}}]
    }
    assert page_filter(None) == {} and page_filter("") == {}
    assert page_sort() == [("created_at", -1), ("_id", -1)]


class Item(BaseModel):
    id: str


def test_make_page_sets_next_cursor_only_when_more_exist():
    docs = [{"_id": f"r-{i}", "created_at": AT - timedelta(minutes=i)} for i in range(4)]
    page = make_page(docs, 3, lambda doc: Item(id=doc["_id"]))
    assert [item.id for item in page.items] == ["r-0", "r-1", "r-2"]
    assert decode_cursor(page.next_cursor) == (AT - timedelta(minutes=2), "r-2")
    last = make_page(docs[:2], 3, lambda doc: Item(id=doc["_id"]))
    assert last.next_cursor is None and len(last.items) == 2


router = APIRouter()


@router.get("/v1/items")
async def list_items(limit: Limit = 50, cursor: Cursor = None) -> Page[Item]:
    page_filter(cursor)
    return Page[Item](items=[Item(id=str(limit))], next_cursor=None)


@pytest.fixture(scope="module")
def client():
    app = create_service_app(
        CommonSettings(service_name="returns", jwt_secret="s" * 64), title="t", routers=[router], configure_logs=False
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://returns")


async def test_limit_defaults_to_50_and_is_bounded(client):
    assert (await client.get("/v1/items")).json() == {"items": [{"id": "50"}], "next_cursor": None}
    assert (await client.get("/v1/items?limit=200")).status_code == 200
    for bad in ("0", "201", "ten"):
        response = await client.get(f"/v1/items?limit={bad}")
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "limit"


@pytest.mark.parametrize("cursor", ["garbage!", "eyJrIjoxLCJpZCI6InIifQ", "A" * 40])
async def test_bad_cursor_over_http(client, cursor):
    response = await client.get("/v1/items", params={"cursor": cursor})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/invalid-cursor")
    assert response.json()["errors"][0]["field"] == "cursor"
