"""Store conformance (tests/conformance/test_store.py): single-document atomicity and unique keys under
racing clients, against MONGODB_URL. Exactly one conditional write of many wins."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from tests.conformance.support import RACE_ROUNDS, RACERS, T0

pytestmark = pytest.mark.integration


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
