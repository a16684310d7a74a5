"""The shape of a filter, as shared/query_shapes/ reads it off a MongoDB command."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.outbox import _due
from shared.pagination import encode_cursor, page_filter
from shared.query_shapes import command_filters, filter_terms, listed, render_terms

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def shape(collection: str, query: dict) -> str:
    return render_terms(filter_terms(collection, query))


def test_equality_is_a_bare_path_and_operators_are_named():
    assert shape("returns", {"_id": "r", "version": 3}) == "{_id, version}"
    assert shape("returns", {"_id": "r", "version": {"$lt": 3}}) == "{_id, version: $lt}"
    assert shape("x", {"t": {"$lte": NOW, "$gt": NOW}}) == "{t: $gt $lte}"
    assert shape("x", {"a.b": {"c": 1}}) == "{a.b}"  # a sub-document compared whole


def test_and_is_flattened_and_or_keeps_its_branches():
    cursor = page_filter(encode_cursor(NOW, "r-1"))
    assert shape("returns", {"$and": [{"order_id": "o"}, cursor]}) == (
        "{$or: [{_id: $lt, created_at}, {created_at: $lt}], order_id}"
    )
    assert shape("refunds", {"outbox_pending": True, **_due(NOW)}) == (
        "{$or: [{outbox_lease_until: $exists}, {outbox_lease_until: $lt}], outbox_pending}"
    )


def test_id_keyed_map_fields_read_as_one_path():
    query = {"_id": "o", "postage.ret_1": {"$exists": False}, "available": {"$lte": 5}}
    assert shape("order_ledgers", query) == "{_id, available: $lte, postage.<id>: $exists}"
    assert shape("elsewhere", {"postage.ret_1": 1}) == "{postage.ret_1}"


def test_filters_of_each_command():
    assert command_filters({"find": "c", "filter": {"a": 1}, "sort": {"t": -1, "_id": -1}}) == [
        ("c", {"a": 1}, "-t, -_id")
    ]
    assert command_filters({"findAndModify": "c", "query": {"a": 1}, "sort": {"t": 1}}) == [("c", {"a": 1}, "+t")]
    assert command_filters({"update": "c", "updates": [{"q": {"a": 1}}, {"q": {"b": 1}}]}) == [
        ("c", {"a": 1}, ""),
        ("c", {"b": 1}, ""),
    ]
    assert command_filters({"delete": "c", "deletes": [{"q": {"a": 1}, "limit": 1}]}) == [("c", {"a": 1}, "")]
    assert command_filters({"aggregate": "c", "pipeline": [{"$match": {"a": 1}}, {"$group": {}}]}) == [
        ("c", {"a": 1}, "")
    ]
    assert command_filters({"insert": "c", "documents": [{"_id": 1}]}) == []
    assert command_filters({"createIndexes": "c", "indexes": []}) == []


def test_listing_filters_are_optional_and_nothing_else_is_allowed():
    newest = "-created_at, -_id"
    assert listed("returns", filter_terms("returns", {}), newest) is not None
    assert listed("returns", filter_terms("returns", {"buyer.id": "b", "status": "requested"}), newest) is not None
    assert listed("returns", filter_terms("returns", {"buyer.id": "b", "note": "x"}), newest) is None
    assert listed("returns", filter_terms("returns", {"buyer.id": "b"}), "") is None  # unsorted: not the listing


def test_a_shape_is_listed_for_its_collections_only():
    slot = {"order_id": "o", "order_seq": 1}
    assert listed("returns", filter_terms("returns", slot), "") is not None
    assert listed("refunds", filter_terms("refunds", slot), "") is None
    assert listed("anything", filter_terms("anything", {"_id": "x"}), "") is not None


def test_a_shape_is_listed_for_the_service_that_sends_it():
    seen = filter_terms("orders", {"_id": "o", "order": {"$exists": False}})  # refunds' copy of an order
    assert listed("orders", seen, "", "refunds") is not None
    assert listed("orders", seen, "", "returns") is None
    assert listed("inbox", filter_terms("inbox", {"_id": "e"}), "", "metrics") is not None  # a shared module
