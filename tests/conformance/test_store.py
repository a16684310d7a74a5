"""Store conformance: every MongoDB operation the services rely on, against MONGODB_URL.

Run against the local MongoDB-wire server (scripts/infra-up) and, unchanged, against real MongoDB:
what passes on both is what service code may use. Design for MongoDB's guarantees and no more:
single-document atomicity and unique indexes; no multi-document transactions, change streams or
TTL indexes; money as integers.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from bson import Binary, Int64, ObjectId
from pymongo import ASCENDING, DESCENDING, DeleteOne, InsertOne, ReplaceOne, ReturnDocument, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

pytestmark = pytest.mark.integration

UTC = UTC
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
RACE_ROUNDS = 10
RACERS = 20


def ms(value: datetime) -> datetime:
    """BSON datetimes hold milliseconds: what a stored datetime reads back as."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


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


async def ids(cursor) -> list:
    return sorted([doc["_id"] async for doc in cursor])


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


# ---- updates ------------------------------------------------------------------------------------


async def test_update_one_set_inc_unset(db):
    coll = db.ledgers
    await coll.insert_one(
        {"_id": "o1", "available": 5000, "reserved": 0, "reservations": {}, "settled": {}, "note": "x"}
    )
    # order_ledger.reserve: guarded $inc plus a dotted $set into a map, conditions on map keys.
    guard = {
        "_id": "o1",
        "available": {"$gte": 1500},
        "reservations.rf1": {"$exists": False},
        "settled.rf1": {"$exists": False},
    }
    result = await coll.update_one(
        guard, {"$inc": {"available": -1500, "reserved": 1500}, "$set": {"reservations.rf1": 1500}}
    )
    assert (result.matched_count, result.modified_count) == (1, 1)
    assert (await coll.update_one(guard, {"$inc": {"available": -1500}})).matched_count == 0

    # order_ledger.settle: equality on a dotted key, $unset of it, $set of another, several $inc.
    result = await coll.update_one(
        {"_id": "o1", "reservations.rf1": 1500},
        {
            "$unset": {"reservations.rf1": "", "note": ""},
            "$set": {"settled.rf1": 1200},
            "$inc": {"reserved": -1500, "refunded": 1200, "available": 300},
        },
    )
    assert result.matched_count == 1
    assert await coll.find_one({"_id": "o1"}) == {
        "_id": "o1",
        "available": 3800,
        "reserved": 0,
        "refunded": 1200,
        "reservations": {},
        "settled": {"rf1": 1200},
    }


async def test_update_one_push_each_size_and_pull_by_subdocument_field(db):
    coll = db.outboxes
    await coll.insert_one({"_id": "d1", "outbox": []})
    await coll.update_one(
        {"_id": "d1"}, {"$push": {"outbox": {"$each": [{"id": "e1"}, {"id": "e2"}]}}, "$set": {"pending": True}}
    )
    await coll.update_one({"_id": "d1"}, {"$push": {"outbox": {"id": "e3", "n": 3}}})
    doc = await coll.find_one({"_id": "d1"})
    assert [e["id"] for e in doc["outbox"]] == ["e1", "e2", "e3"] and doc["pending"] is True

    # $size as a guard ("nothing was pushed since the claim").
    assert (await coll.update_one({"_id": "d1", "outbox": {"$size": 2}}, {"$set": {"x": 1}})).matched_count == 0

    # $pull by a field of the sub-documents, with $in and with plain equality.
    await coll.update_one({"_id": "d1"}, {"$pull": {"outbox": {"id": {"$in": ["e1", "e3"]}}}})
    assert [e["id"] for e in (await coll.find_one({"_id": "d1"}))["outbox"]] == ["e2"]
    await coll.update_one({"_id": "d1"}, {"$pull": {"outbox": {"id": "e2"}}})
    assert (await coll.find_one({"_id": "d1"}))["outbox"] == []

    # Emptying in one write, guarded by $size.
    await coll.update_one({"_id": "d1"}, {"$push": {"outbox": {"$each": [{"id": "e4"}]}}})
    result = await coll.update_one(
        {"_id": "d1", "outbox": {"$size": 1}}, {"$set": {"outbox": []}, "$unset": {"pending": ""}}
    )
    assert result.matched_count == 1
    assert await coll.find_one({"_id": "d1"}) == {"_id": "d1", "outbox": []}


async def test_update_many(db):
    coll = db.things
    await coll.insert_many([{"_id": i, "status": "pending" if i % 2 else "done"} for i in range(6)])
    result = await coll.update_many({"status": "pending"}, {"$set": {"status": "expired"}})
    assert (result.matched_count, result.modified_count) == (3, 3)
    assert await coll.count_documents({"status": "expired"}) == 3


async def test_upsert_with_set_on_insert(db):
    coll = db.counters
    first = await coll.update_one(
        {"_id": "k"}, {"$set": {"seen_at": T0}, "$setOnInsert": {"created_at": T0}, "$inc": {"hits": 1}}, upsert=True
    )
    assert first.upserted_id == "k" and first.matched_count == 0
    later = T0 + timedelta(hours=1)
    second = await coll.update_one(
        {"_id": "k"},
        {"$set": {"seen_at": later}, "$setOnInsert": {"created_at": later}, "$inc": {"hits": 1}},
        upsert=True,
    )
    assert second.upserted_id is None and second.matched_count == 1
    assert await coll.find_one({"_id": "k"}) == {"_id": "k", "seen_at": later, "created_at": T0, "hits": 2}

    # Upsert by a non-_id filter: the filter's equality fields land in the new document.
    made = await coll.update_one({"kind": "daily", "day": "2025-03-01"}, {"$setOnInsert": {"total": 0}}, upsert=True)
    assert isinstance(made.upserted_id, ObjectId)
    assert await coll.find_one({"_id": made.upserted_id}, {"_id": 0}) == {
        "kind": "daily",
        "day": "2025-03-01",
        "total": 0,
    }


async def test_find_one_and_update_upsert_with_version_inc(db):
    """returns.store.put_policy: upsert that $sets fields and $incs a version."""
    coll = db.policies
    doc = await coll.find_one_and_update(
        {"_id": "s1"}, {"$set": {"days": 30}, "$inc": {"version": 1}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert doc == {"_id": "s1", "days": 30, "version": 1}
    doc = await coll.find_one_and_update(
        {"_id": "s1"}, {"$set": {"days": 14}, "$inc": {"version": 1}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert doc == {"_id": "s1", "days": 14, "version": 2}


async def test_find_one_and_update_optimistic_version(db):
    coll = db.refunds
    await coll.insert_one({"_id": "rf1", "status": "pending", "version": 3, "outbox": [1]})
    doc = await coll.find_one_and_update(
        {"_id": "rf1", "version": 3}, {"$set": {"status": "paid", "version": 4}}, return_document=ReturnDocument.AFTER
    )
    assert doc == {"_id": "rf1", "status": "paid", "version": 4, "outbox": [1]}
    stale = await coll.find_one_and_update(
        {"_id": "rf1", "version": 3}, {"$set": {"status": "x", "version": 4}}, return_document=ReturnDocument.AFTER
    )
    assert stale is None
    before = await coll.find_one_and_update({"_id": "rf1"}, {"$inc": {"version": 1}})
    assert before["version"] == 4  # default: the document BEFORE the update
    projected = await coll.find_one_and_update(
        {"_id": "rf1", "status": {"$in": ["paid", "failed"]}},
        {"$set": {"status": "pending"}},
        projection={"outbox": 0},
        return_document=ReturnDocument.AFTER,
    )
    assert projected == {"_id": "rf1", "status": "pending", "version": 5}


async def test_find_one_and_update_with_sort_claims_oldest_due(db):
    """notifications.store.claim_due: take the oldest due, unclaimed item."""
    coll = db.emails
    now = T0 + timedelta(hours=5)
    await coll.insert_many(
        [
            {"_id": "late", "status": "pending", "next_attempt_at": T0 + timedelta(hours=3), "claimed_until": T0},
            {"_id": "oldest", "status": "pending", "next_attempt_at": T0 + timedelta(hours=1), "claimed_until": T0},
            {"_id": "claimed", "status": "pending", "next_attempt_at": T0, "claimed_until": now + timedelta(minutes=1)},
            {"_id": "future", "status": "pending", "next_attempt_at": now + timedelta(hours=1), "claimed_until": T0},
            {"_id": "sent", "status": "sent", "next_attempt_at": T0, "claimed_until": T0},
        ]
    )
    await coll.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
    query = {"status": "pending", "next_attempt_at": {"$lte": now}, "claimed_until": {"$lt": now}}
    update = {"$set": {"claimed_until": now + timedelta(minutes=5)}}
    got = [
        await coll.find_one_and_update(
            query, update, sort=[("next_attempt_at", ASCENDING)], return_document=ReturnDocument.AFTER
        )
        for _ in range(3)
    ]
    assert [d and d["_id"] for d in got] == ["oldest", "late", None]
    assert got[0]["claimed_until"] == now + timedelta(minutes=5)


async def test_conditional_upsert_on_newer_document_raises_duplicate_key(db):
    """returns.store.save_buyer_flag: upsert {_id, at: {$lt: t}} when a newer decision is stored
    cannot match, tries to insert the same _id, and must raise DuplicateKeyError."""
    coll = db.buyers
    newer = T0 + timedelta(hours=1)
    result = await coll.update_one(
        {"_id": "b1", "at": {"$lt": newer}}, {"$set": {"flagged": True, "at": newer}}, upsert=True
    )
    assert result.upserted_id == "b1"
    with pytest.raises(DuplicateKeyError):
        await coll.update_one({"_id": "b1", "at": {"$lt": T0}}, {"$set": {"flagged": False, "at": T0}}, upsert=True)
    assert (await coll.find_one({"_id": "b1"}))["flagged"] is True
    even_newer = newer + timedelta(hours=1)
    result = await coll.update_one(
        {"_id": "b1", "at": {"$lt": even_newer}}, {"$set": {"flagged": False, "at": even_newer}}, upsert=True
    )
    assert (result.matched_count, result.modified_count, result.upserted_id) == (1, 1, None)


async def test_replace_one(db):
    coll = db.orders
    await coll.insert_one({"_id": "o1", "lines": [1, 2], "obsolete": True, "version": 1})
    result = await coll.replace_one({"_id": "o1"}, {"lines": [3], "version": 2})
    assert (result.matched_count, result.modified_count) == (1, 1)
    assert await coll.find_one({"_id": "o1"}) == {"_id": "o1", "lines": [3], "version": 2}
    assert (await coll.replace_one({"_id": "o1", "version": 1}, {"lines": []})).matched_count == 0
    upserted = await coll.replace_one({"_id": "o2"}, {"_id": "o2", "lines": []}, upsert=True)
    assert upserted.upserted_id == "o2"
    assert await coll.find_one({"_id": "o2"}) == {"_id": "o2", "lines": []}


async def test_delete_one_and_delete_many(db):
    coll = db.keys
    await coll.insert_many(
        [{"_id": i, "token": f"t{i}", "state": "in_progress", "expires_at": T0 + timedelta(hours=i)} for i in range(6)]
    )
    assert (await coll.delete_one({"_id": 0, "token": "wrong", "state": "in_progress"})).deleted_count == 0
    assert (await coll.delete_one({"_id": 0, "token": "t0", "state": "in_progress"})).deleted_count == 1
    result = await coll.delete_many({"expires_at": {"$lte": T0 + timedelta(hours=3)}})
    assert result.deleted_count == 3
    assert await ids(coll.find({})) == [4, 5]
    assert (await coll.delete_many({})).deleted_count == 2


# ---- indexes ------------------------------------------------------------------------------------


async def test_create_indexes_single_compound_named_and_idempotent(db):
    coll = db.notifications
    name = await coll.create_index(
        [("event_id", ASCENDING), ("recipient_role", ASCENDING), ("template", ASCENDING)],
        unique=True,
        name="one_email_per_event_recipient_template",
    )
    assert name == "one_email_per_event_recipient_template"
    assert await coll.create_index("expires_at") == "expires_at_1"
    assert (
        await coll.create_index([("return_id", ASCENDING), ("created_at", DESCENDING)]) == "return_id_1_created_at_-1"
    )
    # Creating the same index again is a no-op, as services do at every start.
    assert await coll.create_index("expires_at") == "expires_at_1"
    await coll.create_index(
        [("event_id", ASCENDING), ("recipient_role", ASCENDING), ("template", ASCENDING)],
        unique=True,
        name="one_email_per_event_recipient_template",
    )
    info = await coll.index_information()
    assert {"_id_", "expires_at_1", "return_id_1_created_at_-1", "one_email_per_event_recipient_template"} <= set(info)
    assert info["one_email_per_event_recipient_template"].get("unique") is True


async def test_unique_index_violation_on_insert(db):
    coll = db.returns
    await coll.create_index([("order_id", ASCENDING), ("order_seq", ASCENDING)], unique=True)
    await coll.insert_one({"_id": "r1", "order_id": "o1", "order_seq": 1})
    await coll.insert_one({"_id": "r2", "order_id": "o1", "order_seq": 2})
    await coll.insert_one({"_id": "r3", "order_id": "o2", "order_seq": 1})  # compound: other order is fine
    with pytest.raises(DuplicateKeyError) as caught:
        await coll.insert_one({"_id": "r4", "order_id": "o1", "order_seq": 1})
    assert caught.value.code == 11000
    with pytest.raises(DuplicateKeyError):
        await coll.insert_one({"_id": "r1", "order_id": "o9", "order_seq": 9})  # the _id index
    assert await coll.count_documents({}) == 3


async def test_unique_index_violation_on_update_and_upsert(db):
    coll = db.refunds
    await coll.create_index("refund_key", unique=True)
    await coll.insert_one({"_id": 1, "refund_key": "a"})
    await coll.insert_one({"_id": 2, "refund_key": "b"})
    with pytest.raises(DuplicateKeyError):
        await coll.update_one({"_id": 2}, {"$set": {"refund_key": "a"}})
    with pytest.raises(DuplicateKeyError):
        await coll.update_one({"_id": 3}, {"$set": {"refund_key": "a"}}, upsert=True)
    with pytest.raises(DuplicateKeyError):
        await coll.find_one_and_update({"_id": 4}, {"$set": {"refund_key": "b"}}, upsert=True)
    assert await ids(coll.find({})) == [1, 2]


async def test_insert_many_duplicate_reports_bulk_write_error(db):
    coll = db.things
    await coll.insert_one({"_id": 2})
    with pytest.raises(BulkWriteError) as caught:
        await coll.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 3}])  # ordered: stops at the duplicate
    errors = caught.value.details["writeErrors"]
    assert [e["code"] for e in errors] == [11000] and errors[0]["index"] == 1
    assert await ids(coll.find({})) == [1, 2]
    with pytest.raises(BulkWriteError):
        await coll.insert_many([{"_id": 2}, {"_id": 4}], ordered=False)  # unordered: the rest goes in
    assert await ids(coll.find({})) == [1, 2, 4]


# ---- bulk_write and aggregate -------------------------------------------------------------------


async def test_bulk_write(db):
    coll = db.things
    await coll.insert_many([{"_id": i, "n": i} for i in range(4)])
    result = await coll.bulk_write(
        [
            InsertOne({"_id": 10, "n": 10}),
            UpdateOne({"_id": 0}, {"$inc": {"n": 100}}),
            UpdateMany({"n": {"$in": [1, 2]}}, {"$set": {"small": True}}),
            ReplaceOne({"_id": 3}, {"n": 33}),
            DeleteOne({"_id": 10}),
            UpdateOne({"_id": 20}, {"$set": {"n": 20}}, upsert=True),
        ]
    )
    assert result.inserted_count == 1
    assert result.matched_count == 4
    assert result.modified_count == 4
    assert result.deleted_count == 1
    assert result.upserted_ids == {5: 20}
    docs = {d["_id"]: d async for d in coll.find({})}
    assert docs == {
        0: {"_id": 0, "n": 100},
        1: {"_id": 1, "n": 1, "small": True},
        2: {"_id": 2, "n": 2, "small": True},
        3: {"_id": 3, "n": 33},
        20: {"_id": 20, "n": 20},
    }


async def test_bulk_write_unordered_with_duplicate(db):
    coll = db.things
    await coll.create_index("key", unique=True)
    with pytest.raises(BulkWriteError) as caught:
        await coll.bulk_write(
            [InsertOne({"key": "a"}), InsertOne({"key": "a"}), InsertOne({"key": "b"})], ordered=False
        )
    assert [e["code"] for e in caught.value.details["writeErrors"]] == [11000]
    assert await coll.count_documents({}) == 2


async def test_aggregate_match_group_sum_sort(db):
    coll = db.refunds
    await coll.insert_many(
        [
            {"seller_id": "s1", "amount": 1999, "status": "paid"},
            {"seller_id": "s1", "amount": 501, "status": "paid"},
            {"seller_id": "s2", "amount": 10_000, "status": "paid"},
            {"seller_id": "s2", "amount": 7, "status": "failed"},
            {"seller_id": "s3", "amount": 2**53 + 1, "status": "paid"},
            {"seller_id": "s3", "amount": 2, "status": "paid"},
        ]
    )
    pipeline = [
        {"$match": {"status": "paid"}},
        {"$group": {"_id": "$seller_id", "total": {"$sum": "$amount"}, "count": {"$sum": 1}}},
        {"$sort": {"total": -1}},
    ]
    got = [doc async for doc in coll.aggregate(pipeline)]
    assert got == [
        {"_id": "s3", "total": 2**53 + 3, "count": 2},
        {"_id": "s2", "total": 10_000, "count": 1},
        {"_id": "s1", "total": 2500, "count": 2},
    ]


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


# ---- concurrency: single-document atomicity -----------------------------------------------------


async def test_concurrent_conditional_updates_exactly_one_wins(db, separate_clients):
    """Optimistic concurrency on `version`: of N simultaneous find_one_and_update({_id, version: n})
    on separate connections, exactly one gets the document back, every round."""
    clients = await separate_clients(RACERS)
    colls = [c[db.name].races for c in clients]
    await db.races.insert_one({"_id": "doc", "version": 0, "winner": None})
    for version in range(RACE_ROUNDS):
        results = await asyncio.gather(
            *(
                coll.find_one_and_update(
                    {"_id": "doc", "version": version},
                    {"$set": {"version": version + 1, "winner": racer}},
                    return_document=ReturnDocument.AFTER,
                )
                for racer, coll in enumerate(colls)
            )
        )
        winners = [r for r in results if r is not None]
        assert len(winners) == 1, f"round {version}: {len(winners)} of {RACERS} conditional updates won"
        stored = await db.races.find_one({"_id": "doc"})
        assert stored["version"] == version + 1 and stored["winner"] == winners[0]["winner"]


async def test_concurrent_conditional_update_one_exactly_one_matches(db, separate_clients):
    clients = await separate_clients(RACERS)
    colls = [c[db.name].races for c in clients]
    await db.races.insert_one({"_id": "doc", "version": 0})
    for version in range(RACE_ROUNDS):
        results = await asyncio.gather(
            *(
                coll.update_one({"_id": "doc", "version": version}, {"$set": {"version": version + 1, "by": racer}})
                for racer, coll in enumerate(colls)
            )
        )
        assert sum(r.matched_count for r in results) == 1, f"round {version}"
        assert sum(r.modified_count for r in results) == 1, f"round {version}"


async def test_concurrent_inc_loses_no_update(db, separate_clients):
    clients = await separate_clients(RACERS)
    colls = [c[db.name].counters for c in clients]
    await db.counters.insert_one({"_id": "c", "n": 0, "cents": 0})
    per_racer = 25
    await asyncio.gather(
        *(coll.update_one({"_id": "c"}, {"$inc": {"n": 1, "cents": 199}}) for coll in colls for _ in range(per_racer))
    )
    doc = await db.counters.find_one({"_id": "c"})
    assert doc["n"] == RACERS * per_racer and doc["cents"] == 199 * RACERS * per_racer


async def test_concurrent_guarded_reservations_never_overspend(db, separate_clients):
    """order_ledger.reserve: $inc guarded by available >= amount; 20 racers, room for 10."""
    clients = await separate_clients(RACERS)
    colls = [c[db.name].ledgers for c in clients]
    for round_ in range(RACE_ROUNDS):
        await db.ledgers.insert_one({"_id": round_, "available": 1000, "reserved": 0, "reservations": {}})
        results = await asyncio.gather(
            *(
                coll.update_one(
                    {"_id": round_, "available": {"$gte": 100}, f"reservations.rf{racer}": {"$exists": False}},
                    {"$inc": {"available": -100, "reserved": 100}, "$set": {f"reservations.rf{racer}": 100}},
                )
                for racer, coll in enumerate(colls)
            )
        )
        assert sum(r.matched_count for r in results) == 10, f"round {round_}"
        doc = await db.ledgers.find_one({"_id": round_})
        assert (doc["available"], doc["reserved"], len(doc["reservations"])) == (0, 1000, 10)


async def test_concurrent_claims_take_each_item_once(db, separate_clients):
    """Competing workers claim due items with find_one_and_update + sort: no item twice."""
    clients = await separate_clients(RACERS)
    colls = [c[db.name].jobs for c in clients]
    for round_ in range(RACE_ROUNDS):
        await db.jobs.delete_many({})
        await db.jobs.insert_many([{"_id": i, "status": "pending", "due": T0 + timedelta(seconds=i)} for i in range(8)])
        results = await asyncio.gather(
            *(
                coll.find_one_and_update(
                    {"status": "pending"},
                    {"$set": {"status": "claimed", "by": racer}},
                    sort=[("due", ASCENDING)],
                    return_document=ReturnDocument.AFTER,
                )
                for racer, coll in enumerate(colls)
            )
        )
        claimed = [r for r in results if r is not None]
        assert sorted(r["_id"] for r in claimed) == list(range(8)), f"round {round_}: {[r['_id'] for r in claimed]}"
        stored = {d["_id"]: d["by"] async for d in db.jobs.find({})}
        assert stored == {r["_id"]: r["by"] for r in claimed}


async def test_concurrent_inserts_of_one_unique_key(db, separate_clients):
    clients = await separate_clients(RACERS)
    colls = [c[db.name].inbox for c in clients]
    await db.inbox.create_index("event_id", unique=True)
    for round_ in range(RACE_ROUNDS):
        results = await asyncio.gather(
            *(coll.insert_one({"event_id": f"e{round_}", "by": racer}) for racer, coll in enumerate(colls)),
            return_exceptions=True,
        )
        ok = [r for r in results if not isinstance(r, BaseException)]
        dup = [r for r in results if isinstance(r, DuplicateKeyError)]
        assert len(ok) == 1 and len(dup) == RACERS - 1, f"round {round_}: {results}"
    assert await db.inbox.count_documents({}) == RACE_ROUNDS


async def test_concurrent_upserts_of_one_key_make_one_document(db, separate_clients):
    clients = await separate_clients(RACERS)
    colls = [c[db.name].daily for c in clients]
    await db.daily.create_index([("seller_id", ASCENDING), ("day", ASCENDING)], unique=True)
    for round_ in range(RACE_ROUNDS):
        results = await asyncio.gather(
            *(
                coll.update_one({"seller_id": "s1", "day": round_}, {"$inc": {"count": 1}}, upsert=True)
                for coll in colls
            ),
            return_exceptions=True,
        )
        # Real MongoDB may answer a racing upsert with DuplicateKeyError; nothing else is acceptable.
        assert all(not isinstance(r, BaseException) or isinstance(r, DuplicateKeyError) for r in results), results
        applied = sum(1 for r in results if not isinstance(r, BaseException))
        docs = [d async for d in db.daily.find({"day": round_})]
        assert len(docs) == 1 and docs[0]["count"] == applied, f"round {round_}: {docs}, {applied} applied"
