"""Non-unique indexes: a filter returns the same documents with and without one, and is served by it.

Every filter runs on two collections holding the same documents, one with the indexes and one
without: results must be identical (as sets, and in order where the query sorts). Then, on a
larger collection, filters on an index's leading keys must be answered by that index, examining
only its candidates, where the unindexed copy reads every document. The server says so itself (no
timing, which flakes on a loaded machine): the local MongoDB-wire server (deploy/local/mongo-wire,
SecondaryIndex) through its `mongoWireIndexStats` counters, MongoDB through explain's
executionStats. A filter that silently scans fails that test.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import OperationFailure

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
INDEXES: list[list[tuple[str, int]]] = [
    [("a", ASCENDING)],
    [("b", ASCENDING), ("at", ASCENDING)],
    [("s.t", ASCENDING), ("flag", DESCENDING)],  # s.t may be an array: flag never is (parallel arrays)
    [("flag", ASCENDING)],
]

# Mixed types, nulls and missing values (the sentinel), arrays and sub-documents.
MISSING = object()
VALUES: list[Any] = [
    *(0, 1, 2, 2.0, 3, 5, 5.5, 7, -1, 10**12),
    *("", "1", "5", "a", "m", "x", "zz"),
    *(None, MISSING, MISSING, True, False),
    *(T0, T0 + timedelta(hours=1), T0 - timedelta(days=1)),
    *([1, 2], [5, "x"], [], [None], {"k": 1}),
]
SCALARS = VALUES[:-5]


def _document(rng: random.Random, i: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": i}
    for field, values in (("a", VALUES), ("b", VALUES), ("flag", SCALARS)):
        value = rng.choice(values)
        if value is not MISSING:
            doc[field] = value
    if rng.random() < 0.8:
        doc["at"] = T0 + timedelta(minutes=rng.randrange(-300, 300))
    shape = rng.randrange(4)
    if shape == 0:
        doc["s"] = {"t": rng.choice(["p", "q", 1, None])}
    elif shape == 1:
        doc["s"] = [{"t": "p"}, {"t": rng.choice(["q", 2])}]
    elif shape == 2:
        doc["s"] = "flat"
    return doc


FILTERS: list[dict[str, Any]] = [
    # equality, on every type
    *({"a": value} for value in (5, 5.0, 2, "5", "x", True, False, T0, 10**12, "absent")),
    {"a": None},
    {"a": {"$eq": 3}},
    {"a": {"$exists": False}},
    {"a": {"$exists": True}},
    {"a": {"$in": [1, "x", None]}},
    {"a": {"$in": [2, 7, T0]}},
    {"a": {"$in": []}},
    # ranges, within and across types, empty ones
    {"a": {"$gt": 3}},
    {"a": {"$gte": 2, "$lt": 7}},
    {"a": {"$lt": "m"}},
    {"a": {"$gte": ""}},
    {"a": {"$lte": T0}},
    {"a": {"$gt": T0 - timedelta(days=2), "$lt": T0 + timedelta(minutes=30)}},
    {"a": {"$gt": 5, "$lt": 3}},
    {"a": {"$lt": None}},
    {"a": {"$ne": 5}},
    {"a": {"$nin": [5, None]}},
    {"a": {"$not": {"$gt": 3}}},
    # arrays and sub-documents (always candidates: the matcher decides)
    {"a": [1, 2]},
    {"a": {"k": 1}},
    {"a": {"$size": 2}},
    {"a": {"$elemMatch": {"$gt": 1}}},
    # $or on the leading key, and with other fields
    {"$or": [{"a": {"$exists": False}}, {"a": {"$lt": 2}}]},
    {"flag": True, "$or": [{"at": {"$exists": False}}, {"at": {"$lt": T0}}]},
    {"$or": [{"a": 5}, {"b": 5}]},
    {"$and": [{"a": {"$gte": 1}}, {"a": {"$lte": 5}}]},
    # compound: points then a range, partial prefixes, the second key alone (not served)
    {"b": 5, "at": {"$lte": T0}},
    {"b": {"$in": [1, "x", None]}, "at": {"$gt": T0 - timedelta(hours=1), "$lt": T0 + timedelta(hours=1)}},
    {"b": None, "at": {"$exists": False}},
    {"b": "x"},
    {"at": {"$lt": T0}},
    {"b": 5, "$or": [{"at": {"$lt": T0}}, {"at": T0}]},
    {"s.t": "p"},
    {"s.t": "q", "flag": {"$gte": 0}},
    {"s.t": {"$in": ["p", 1]}, "flag": True},
    {"s.t": None},
    {"s": "flat"},
    {"flag": {"$in": [True, 1]}, "a": {"$gt": 0}},
]


async def _seed(db: Any, count: int, seed: int) -> tuple[Any, Any]:
    """Two collections with the same documents: `indexed` (indexes made before and after the
    documents, so both the build and the maintenance are exercised) and `plain`."""
    rng = random.Random(seed)
    docs = [_document(rng, i) for i in range(count)]
    indexed, plain = db.indexed, db.plain
    await indexed.create_index(INDEXES[0])
    await indexed.insert_many(docs[: count // 2])
    await plain.insert_many([dict(doc) for doc in docs])
    for keys in INDEXES[1:]:
        await indexed.create_index(keys)
    await indexed.insert_many(docs[count // 2 :])
    return indexed, plain


async def _ids(coll: Any, query: dict[str, Any]) -> list[Any]:
    return sorted([doc["_id"] async for doc in coll.find(query, {"_id": 1})])


async def _assert_same(indexed: Any, plain: Any) -> None:
    for query in FILTERS:
        assert await _ids(indexed, query) == await _ids(plain, query), query
        assert await indexed.count_documents(query) == await plain.count_documents(query), query
    # sorted and limited, as the listings query
    for query, sort in (
        ({"b": {"$in": [5, 2, "x"]}}, [("at", DESCENDING), ("_id", DESCENDING)]),
        ({"a": {"$gte": 1}}, [("a", ASCENDING), ("_id", ASCENDING)]),
        ({"flag": True, "at": {"$lt": T0}}, [("at", ASCENDING), ("_id", ASCENDING)]),
    ):
        got = [doc async for doc in indexed.find(query).sort(sort).limit(7)]
        want = [doc async for doc in plain.find(query).sort(sort).limit(7)]
        assert got == want, query


async def test_filters_return_the_same_documents_with_and_without_indexes(db):
    indexed, plain = await _seed(db, 600, seed=13)
    await _assert_same(indexed, plain)


async def test_results_stay_the_same_after_updates_and_deletes(db):
    indexed, plain = await _seed(db, 400, seed=14)
    rng = random.Random(15)
    for step in range(120):
        target = {"_id": rng.randrange(400)}
        value = rng.choice(VALUES)
        update = {"$unset": {"a": ""}} if value is MISSING else {"$set": {"a": value, "b": rng.choice(SCALARS[:10])}}
        if step % 7 == 0:
            update = {"$set": {"s": {"t": rng.choice(["p", "q", 3])}}}
        for coll in (indexed, plain):
            await coll.update_one(target, update)
    for coll in (indexed, plain):
        await coll.update_many({"a": {"$gte": 5}}, {"$set": {"flag": True, "at": T0}})
        await coll.delete_many({"b": {"$in": [0, 1, "a"]}})
        await coll.delete_one({"a": None})
        await coll.find_one_and_update({"flag": True}, {"$set": {"flag": False, "a": "moved"}}, sort=[("_id", 1)])
        await coll.replace_one({"_id": 3}, {"_id": 3, "a": 5, "b": 5, "at": T0})
    await _assert_same(indexed, plain)


async def test_an_index_made_twice_or_dropped_keeps_results(db):
    indexed, plain = await _seed(db, 300, seed=16)
    await indexed.create_index([("a", ASCENDING)])  # same name again: the first one stays
    await indexed.drop_index("b_1_at_1")
    await indexed.insert_many([{"_id": 1000 + i, "a": i % 3, "b": 5, "at": T0} for i in range(20)])
    await plain.insert_many([{"_id": 1000 + i, "a": i % 3, "b": 5, "at": T0} for i in range(20)])
    await _assert_same(indexed, plain)


async def test_id_in_with_other_conditions(db):
    coll = db.things
    await coll.insert_many([{"_id": f"d{i}", "n": i, "pending": i % 2 == 0} for i in range(50)])
    ids = ["d1", "d2", "d3", "d4", "nope", "d48"]
    got = await _ids(coll, {"_id": {"$in": ids}, "pending": True})
    assert got == ["d2", "d4", "d48"]
    assert await _ids(coll, {"_id": {"$in": []}, "pending": True}) == []


# ---- the index is used ----------------------------------------------------------------------------

BIG = 20_000
COLLSCAN = "COLLSCAN"
COMMAND_NOT_FOUND = 59


async def _find_answered(coll: Any, query: dict[str, Any], sort: list[tuple[str, int]]) -> tuple[list[Any], str, int]:
    """find(QUERY).sort(SORT) on COLL: its documents, what answered it (an index's name, or COLLSCAN)
    and how many documents the server examined for it.

    The launcher counts per collection and index (deploy/local/README.md, `mongoWireIndexStats`):
    the counts of this test's database are reset, the query runs, and it must be the one query
    counted. MongoDB has no such command: there, explain's executionStats say the same."""
    db = coll.database
    try:
        await db.command({"mongoWireIndexStats": 1, "reset": True})
    except OperationFailure as exc:
        if exc.code != COMMAND_NOT_FOUND:
            raise
        return await _find_explained(coll, query, sort)
    docs = await coll.find(query).sort(sort).to_list(None)
    stats = await db.command({"mongoWireIndexStats": 1})
    ours = [entry for entry in stats["collections"] if entry["ns"] == f"{db.name}.{coll.name}"]
    assert len(ours) == 1, stats
    answers = [(index["name"], index) for index in ours[0]["indexes"] if index["queries"]]
    if ours[0]["collScan"]["queries"]:
        answers.append((COLLSCAN, ours[0]["collScan"]))
    assert [counts["queries"] for _, counts in answers] == [1], f"not one query counted for {query}: {stats}"
    answered, counts = answers[0]
    return docs, answered, counts["docsExamined"]


async def _find_explained(coll: Any, query: dict[str, Any], sort: list[tuple[str, int]]) -> tuple[list[Any], str, int]:
    docs = await coll.find(query).sort(sort).to_list(None)
    try:
        explained = await coll.find(query).sort(sort).explain()
    except OperationFailure as exc:
        if exc.code != COMMAND_NOT_FOUND:
            raise
        pytest.fail(
            "The server answers neither mongoWireIndexStats nor explain: a MongoDB-wire launcher older "
            "than its sources? Restart it from a jar built by scripts/infra-up (it rebuilds a stale jar "
            "but reuses a running server).",
            pytrace=False,
        )
    stages: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("stage") in ("IXSCAN", COLLSCAN):
                stages.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(explained["queryPlanner"]["winningPlan"])
    names = {stage.get("indexName", COLLSCAN) for stage in stages}
    assert len(names) == 1, explained["queryPlanner"]["winningPlan"]
    return docs, names.pop(), explained["executionStats"]["totalDocsExamined"]


async def test_filters_on_leading_keys_are_served_by_the_index(db):
    """Each query matches a handful of documents out of BIG: served by its index, the server examines
    the matching documents and at most the index's other candidates (for the outbox query the
    pending ones, whose lease the filter then checks; the launcher's index also hands over the
    documents on an exclusive range bound, SecondaryIndex taking bounds inclusively); on the
    unindexed copy it reads all BIG."""
    now = T0
    docs = []
    for i in range(BIG):
        docs.append(
            {
                "_id": f"doc{i:06d}",
                "status": "failed" if i % 1000 == 0 else "sent",
                "next_attempt_at": now + timedelta(seconds=(i % 7) - 3),
                "processed_at": now - timedelta(seconds=BIG - i),
                "buyer": {"id": f"b{i % 2000}"},
                "created_at": now + timedelta(seconds=i),
                **({"outbox_pending": True} if i % 997 == 0 else {}),
                **({"outbox_lease_until": now + timedelta(seconds=5)} if i % 1994 == 0 else {}),
            }
        )
    indexed, plain = db.indexed, db.plain
    for keys in (
        [("status", ASCENDING), ("next_attempt_at", ASCENDING)],
        [("processed_at", ASCENDING)],
        [("outbox_pending", ASCENDING)],
        [("buyer.id", ASCENDING), ("created_at", DESCENDING)],
    ):
        await indexed.create_index(keys)
    for start in range(0, BIG, 5000):
        await indexed.insert_many(docs[start : start + 5000])
        await plain.insert_many(docs[start : start + 5000])

    outbox = {
        "outbox_pending": True,
        "$or": [{"outbox_lease_until": {"$exists": False}}, {"outbox_lease_until": {"$lt": now}}],
    }
    early = now - timedelta(seconds=BIG - 10)
    # (filter, sort, the index that must answer it, the documents it may examine: None for exactly
    # the matching ones)
    queries: list[tuple[dict[str, Any], list[tuple[str, int]] | None, str, dict[str, Any] | None]] = [
        (
            {"status": "failed", "next_attempt_at": {"$lte": now}},
            [("next_attempt_at", ASCENDING)],
            "status_1_next_attempt_at_1",
            None,
        ),
        ({"processed_at": {"$lt": early}}, None, "processed_at_1", {"processed_at": {"$lte": early}}),
        (outbox, None, "outbox_pending_1", {"outbox_pending": True}),
        ({"buyer.id": "b42"}, [("created_at", DESCENDING), ("_id", DESCENDING)], "buyer.id_1_created_at_-1", None),
        (
            {"buyer.id": "b42", "$or": [{"created_at": {"$lt": now + timedelta(seconds=10_000)}}]},
            [("created_at", DESCENDING), ("_id", DESCENDING)],
            "buyer.id_1_created_at_-1",
            None,
        ),
    ]
    for query, sort, index, candidates in queries:
        order = sort or [("_id", 1)]
        want, scanned, scanned_docs = await _find_answered(plain, query, order)
        got, answered, examined = await _find_answered(indexed, query, order)
        assert got == want and 0 < len(got) < 50, query
        assert (scanned, scanned_docs) == (COLLSCAN, BIG), query
        at_most = len(got) if candidates is None else await plain.count_documents(candidates)
        assert answered == index and len(got) <= examined <= at_most < 50, (query, answered, examined, at_most)
