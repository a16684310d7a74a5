"""Store conformance (tests/conformance/test_store.py): updates, indexes, bulk writes and aggregation,
against MONGODB_URL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, DeleteOne, InsertOne, ReplaceOne, ReturnDocument, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from tests.conformance.support import T0, ids

pytestmark = pytest.mark.integration


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
