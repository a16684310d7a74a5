"""One page of a store's list, newest first: the caller's filter ANDed with the cursor's "after this"."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from shared.pagination import Page, make_page, page_filter, page_sort

T = TypeVar("T")


async def find_page(
    collection: Any,
    criteria: dict[str, Any],
    cursor: str | None,
    limit: int,
    convert: Callable[[Mapping[str, Any]], T],
    projection: Mapping[str, Any] | None = None,
) -> Page[T]:
    """Up to `limit` documents matching `criteria` after `cursor` (by created_at, then _id), converted;
    the page's next cursor when more match. Served by a store's (criteria..., created_at, _id) indexes."""
    after = page_filter(cursor)
    query = {"$and": [criteria, after]} if after and criteria else (after or criteria)
    docs = [doc async for doc in collection.find(query, projection).sort(page_sort()).limit(limit + 1)]
    return make_page(docs, limit, convert)
