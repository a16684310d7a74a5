"""Store conformance: every MongoDB operation the services rely on, against MONGODB_URL.

Run against the local MongoDB-wire server (scripts/infra-up) and, unchanged, against real MongoDB:
what passes on both is what service code may use. Design for MongoDB's guarantees and no more:
single-document atomicity and unique indexes; no multi-document transactions, change streams or
TTL indexes; money as integers. This module: reads, queries and types; test_store_writes.py:
updates, indexes, bulk writes and aggregation; test_store_concurrency.py: single-document
atomicity under racing clients.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from bson import Binary, Int64, ObjectId
from pymongo import ASCENDING, DESCENDING

from tests.conformance.support import T0, ids, ms

pytestmark = pytest.mark.integration


# ---- basics -------------------------------------------------------------------------------------


async def test_ping_and_server_version(db):
    assert (await db.command("ping"))["ok"] == 1
    info = await db.client.server_info()
    assert info["version"]


async def test_insert_one_and_find_one(db):
    coll = db.things
    result = await coll.insert_one({"_id": "a", "name": "first", "n": 1})
    assert result.inserted_id == "a"
    generated = await coll.insert_one({"name": "second"})
    assert isinstance(generated.inserted_id, ObjectId)

    assert await coll.find_one({"_id": "a"}) == {"_id": "a", "name": "first", "n": 1}
    assert (await coll.find_one({"_id": generated.inserted_id}))["name"] == "second"
    assert await coll.find_one({"_id": "missing"}) is None


async def test_insert_many(db):
    coll = db.things
    result = await coll.insert_many([{"_id": i, "n": i} for i in range(5)])
    assert result.inserted_ids == [0, 1, 2, 3, 4]
    assert await coll.count_documents({}) == 5


async def test_projection_include_and_exclude(db):
    coll = db.things
    await coll.insert_one(
        {
            "_id": "r1",
            "status": "open",
            "outbox": [{"id": "e1"}],
            "html": "<p>",
            "buyer": {"id": "b1", "email": "b@example.com"},
        }
    )
    assert await coll.find_one({"_id": "r1"}, {"_id": 1}) == {"_id": "r1"}
    assert await coll.find_one({"_id": "r1"}, {"outbox": 0, "html": 0}) == {
        "_id": "r1",
        "status": "open",
        "buyer": {"id": "b1", "email": "b@example.com"},
    }
    docs = [d async for d in coll.find({}, {"outbox": 0})]
    assert "outbox" not in docs[0] and docs[0]["status"] == "open"


async def test_binary_and_nested_values_round_trip(db):
    coll = db.things
    doc = {
        "_id": "k",
        "body": b"\x00\x01binary\xff",
        "headers": [["content-type", "application/json"]],
        "map": {"r-1": 100, "r-2": {"deep": [1, 2, {"x": None}]}},
        "flag": True,
        "ratio": 0.25,
    }
    await coll.insert_one(doc)
    got = await coll.find_one({"_id": "k"})
    assert got["body"] == b"\x00\x01binary\xff"
    assert isinstance(got["body"], bytes | Binary)
    assert got == doc


# ---- queries ------------------------------------------------------------------------------------


@pytest.fixture
async def returns(db):
    coll = db.returns
    await coll.insert_many(
        [
            {
                "_id": "r1",
                "status": "requested",
                "amount": 1000,
                "buyer": {"id": "b1"},
                "tags": ["damaged", "late"],
                "items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}],
                "lease": T0,
                "created_at": T0,
            },
            {
                "_id": "r2",
                "status": "approved",
                "amount": 2500,
                "buyer": {"id": "b2"},
                "tags": ["late"],
                "items": [{"sku": "B", "qty": 5}],
                "created_at": T0 + timedelta(hours=1),
            },
            {
                "_id": "r3",
                "status": "refunded",
                "amount": 500,
                "buyer": {"id": "b1"},
                "tags": [],
                "items": [{"sku": "C", "qty": 1}],
                "lease": T0 + timedelta(days=1),
                "created_at": T0 + timedelta(hours=2),
            },
            {
                "_id": "r4",
                "status": "requested",
                "amount": 0,
                "buyer": {"id": "b3"},
                "tags": ["damaged"],
                "items": [],
                "created_at": T0 + timedelta(hours=3),
            },
        ]
    )
    return coll


async def test_find_in(returns):
    assert await ids(returns.find({"status": {"$in": ["requested", "approved"]}})) == ["r1", "r2", "r4"]
    assert await ids(returns.find({"_id": {"$in": ["r3", "nope"]}})) == ["r3"]


async def test_find_ranges(returns):
    assert await ids(returns.find({"amount": {"$gte": 500, "$lt": 2500}})) == ["r1", "r3"]
    assert await ids(returns.find({"amount": {"$gt": 500, "$lte": 2500}})) == ["r1", "r2"]
    window = {"created_at": {"$gte": T0 + timedelta(hours=1), "$lt": T0 + timedelta(hours=3)}}
    assert await ids(returns.find(window)) == ["r2", "r3"]


async def test_find_exists_and_ne(returns):
    assert await ids(returns.find({"lease": {"$exists": True}})) == ["r1", "r3"]
    assert await ids(returns.find({"lease": {"$exists": False}})) == ["r2", "r4"]
    assert await ids(returns.find({"status": {"$ne": "requested"}})) == ["r2", "r3"]


async def test_find_or_and(returns):
    # The outbox relay's "due" filter: no lease, or an expired one.
    due = {"$or": [{"lease": {"$exists": False}}, {"lease": {"$lt": T0 + timedelta(hours=1)}}]}
    assert await ids(returns.find(due)) == ["r1", "r2", "r4"]
    both = {"$and": [{"status": "requested"}, due]}
    assert await ids(returns.find(both)) == ["r1", "r4"]
    # Implicit AND of a field condition and an $or.
    assert await ids(returns.find({"buyer.id": "b1", **due})) == ["r1"]


async def test_find_nested_fields(returns):
    assert await ids(returns.find({"buyer.id": "b1"})) == ["r1", "r3"]
    assert await ids(returns.find({"buyer.id": {"$in": ["b2", "b3"]}})) == ["r2", "r4"]


async def test_find_array_element_match(returns):
    assert await ids(returns.find({"tags": "late"})) == ["r1", "r2"]
    assert await ids(returns.find({"tags": {"$in": ["damaged"]}})) == ["r1", "r4"]
    assert await ids(returns.find({"items.sku": "B"})) == ["r1", "r2"]
    assert await ids(returns.find({"items": {"$elemMatch": {"sku": "B", "qty": {"$gte": 3}}}})) == ["r2"]
    assert await ids(returns.find({"items": {"$size": 0}})) == ["r4"]
    assert await ids(returns.find({"items": {"$size": 2}})) == ["r1"]


async def test_count_documents(returns):
    assert await returns.count_documents({}) == 4
    assert await returns.count_documents({"status": "requested"}) == 2
    assert await returns.count_documents({"buyer.id": "b1", "amount": {"$gte": 600}}) == 1
    assert await returns.count_documents({"status": "nope"}) == 0


async def test_sort_limit_and_many_batches(db):
    coll = db.many
    await coll.insert_many([{"_id": i, "n": (i * 7) % 250} for i in range(250)])
    everything = [doc async for doc in coll.find({})]  # more than one batch: getMore
    assert len(everything) == 250
    top = [doc["n"] async for doc in coll.find({}).sort("n", DESCENDING).limit(3)]
    assert top == [249, 248, 247]
    bottom = [doc["n"] async for doc in coll.find({"n": {"$lt": 10}}).sort([("n", ASCENDING)]).limit(2)]
    assert bottom == [0, 1]
    assert len([doc async for doc in coll.find({}).sort("n", ASCENDING).skip(240)]) == 10


@pytest.mark.parametrize("descending", [True, False])
async def test_cursor_pagination_with_tie_break(db, descending):
    """shared/pagination.py: sort by (created_at, _id), resume after (value, id) with an $or."""
    coll = db.pages
    await coll.create_index([("buyer.id", ASCENDING), ("created_at", DESCENDING)])
    docs = []
    for i in range(23):  # many equal created_at values: the _id tie-break matters
        docs.append(
            {
                "_id": f"id{i:03d}",
                "buyer": {"id": "b1" if i % 4 else "b2"},
                "created_at": T0 + timedelta(minutes=i // 3),
            }
        )
    await coll.insert_many(docs)
    direction = DESCENDING if descending else ASCENDING
    op = "$lt" if descending else "$gt"
    criteria = {"buyer.id": "b1"}
    expected = sorted(
        (d for d in docs if d["buyer"]["id"] == "b1"), key=lambda d: (d["created_at"], d["_id"]), reverse=descending
    )

    seen, after, limit = [], None, 4
    while True:
        page_filter = (
            {}
            if after is None
            else {"$or": [{"created_at": {op: after[0]}}, {"created_at": after[0], "_id": {op: after[1]}}]}
        )
        query = {"$and": [criteria, page_filter]} if page_filter else criteria
        found = [
            d async for d in coll.find(query).sort([("created_at", direction), ("_id", direction)]).limit(limit + 1)
        ]
        seen.extend(found[:limit])
        if len(found) <= limit:
            break
        last = found[limit - 1]
        after = (last["created_at"], last["_id"])
    assert [d["_id"] for d in seen] == [d["_id"] for d in expected]


# ---- types --------------------------------------------------------------------------------------


async def test_datetimes_round_trip_as_utc(db):
    coll = db.times
    aware = datetime(2025, 3, 30, 1, 59, 59, 123456, tzinfo=UTC)
    paris = timezone(timedelta(hours=2))
    other = datetime(2025, 3, 30, 4, 0, 0, 999999, tzinfo=paris)  # 02:00:00.999 UTC
    await coll.insert_many([{"_id": "a", "at": aware}, {"_id": "b", "at": other}])
    a = await coll.find_one({"_id": "a"})
    b = await coll.find_one({"_id": "b"})
    assert a["at"] == ms(aware) and a["at"].utcoffset() == timedelta(0)
    assert b["at"] == ms(other) and b["at"].utcoffset() == timedelta(0)
    assert b["at"].hour == 2
    # Datetime comparisons in filters and sort follow the instant, not the offset.
    cut = datetime(2025, 3, 30, 2, 0, 0, tzinfo=UTC)
    assert await ids(coll.find({"at": {"$lt": cut}})) == ["a"]
    assert await ids(coll.find({"at": {"$gte": cut}})) == ["b"]
    assert [d["_id"] async for d in coll.find({}).sort("at", DESCENDING)] == ["b", "a"]
    # Dates inside sub-documents and arrays, and after an update.
    later = datetime(2030, 1, 1, tzinfo=UTC)
    await coll.update_one({"_id": "a"}, {"$set": {"history": [{"at": later}], "meta.at": later}})
    a = await coll.find_one({"_id": "a"})
    assert a["history"][0]["at"] == later and a["meta"]["at"] == later


async def test_int64_round_trip_exactly(db):
    coll = db.money
    values = {
        "small": 1999,
        "int32_max": 2**31 - 1,
        "beyond_int32": 2**31,
        "beyond_double": 2**53 + 1,
        "large": 9_007_199_254_740_993_1,
        "max": 2**63 - 1,
        "min": -(2**63),
        "negative": -(2**53 + 3),
        "explicit": Int64(5),
    }
    await coll.insert_one({"_id": "m", **values})
    got = await coll.find_one({"_id": "m"})
    for key, value in values.items():
        assert got[key] == value and isinstance(got[key], int), key
    # Exact arithmetic on large integers, and int32 overflow promoting to int64.
    await coll.update_one({"_id": "m"}, {"$inc": {"beyond_double": 2, "int32_max": 1, "negative": -2}})
    got = await coll.find_one({"_id": "m"})
    assert got["beyond_double"] == 2**53 + 3
    assert got["int32_max"] == 2**31
    assert got["negative"] == -(2**53 + 5)
    # Equality and range queries on large integers are exact too.
    assert await coll.count_documents({"beyond_double": 2**53 + 3}) == 1
    assert await coll.count_documents({"beyond_double": 2**53 + 2}) == 0
    assert await coll.count_documents({"max": {"$gt": 2**63 - 2}}) == 1
