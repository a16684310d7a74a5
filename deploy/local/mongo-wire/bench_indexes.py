"""Cost of each non-`_id` query shape of shared/query_shapes/ on the local MongoDB-wire server, by data size.

    .venv/bin/python deploy/local/mongo-wire/bench_indexes.py [--jar JAR] [--sizes 5000,50000] [--rounds 30]

Starts its own server from JAR (default: target/mongo-wire.jar next to this file) on a free port
with a fresh H2 file, and for each size N and each shape fills a collection with N documents that
carry the indexes the services declare, of which only a handful match the shape's filter (as in
steady state: few due items, one buyer's returns), then times ROUNDS runs of the filter (sorted and
limited as the service sends it; fewer runs once they took 3 s, at least 3). Prints the median time
per query and the server's CPU per query (from /proc). Run it with the jar before and after a change to compare.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_writes import HERE, free_port, server_cpu, start_server

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=400)
SOON = NOW + timedelta(days=3)


def _t(i: int, n: int) -> datetime:
    """Spread over the last year, oldest first."""
    return LONG_AGO + timedelta(seconds=i * (400 * 86400 // n))


# name: (indexes, document i of n, filter, sort, limit); "rare" documents (i % 1000 == 7) match.
Shape = tuple[list[list[tuple[str, int]]], Any, dict[str, Any], list[tuple[str, int]] | None, int]


def _rare(i: int) -> bool:
    return i % 1000 == 7


SHAPES: dict[str, Shape] = {
    "inbox {processed_at: $lt} (purge_inbox)": (
        [[("processed_at", ASCENDING)]],
        lambda i, n: {"processed_at": LONG_AGO - timedelta(days=1) if _rare(i) else _t(i, n)},
        {"processed_at": {"$lt": LONG_AGO}},
        None,
        0,
    ),
    "idempotency_keys {expires_at: $lte} (purge_expired)": (
        [[("expires_at", ASCENDING)]],
        lambda i, n: {"expires_at": LONG_AGO if _rare(i) else SOON},
        {"expires_at": {"$lte": NOW}},
        None,
        0,
    ),
    "outbox {outbox_pending, $or lease} (_sweep)": (
        [[("outbox_pending", ASCENDING)]],
        lambda i, n: {"outbox_pending": True, "outbox": [{"id": i}]} if _rare(i) else {"status": "refunded"},
        {
            "outbox_pending": True,
            "$or": [{"outbox_lease_until": {"$exists": False}}, {"outbox_lease_until": {"$lt": NOW}}],
        },
        None,
        0,
    ),
    "returns {status, response_due_at: $gt $lte, ...} +response_due_at (due_for_reminder)": (
        [[("status", ASCENDING), ("response_due_at", ASCENDING)], [("status", ASCENDING), ("ship_by", ASCENDING)]],
        lambda i, n: {
            "status": "requested" if _rare(i) else "refunded",
            "response_due_at": NOW - timedelta(hours=1),
            "in_policy": True,
            "ship_by": SOON,
        },
        {
            "status": "requested",
            "in_policy": True,
            "reminded_at": {"$exists": False},
            "response_due_at": {"$gt": NOW - timedelta(days=1), "$lte": NOW},
        },
        [("response_due_at", ASCENDING)],
        100,
    ),
    "returns {authorization.returnless, ship_by: $lte, status} +ship_by (past_ship_by)": (
        [[("status", ASCENDING), ("response_due_at", ASCENDING)], [("status", ASCENDING), ("ship_by", ASCENDING)]],
        lambda i, n: {
            "status": "authorized" if _rare(i) else "refunded",
            "ship_by": NOW - timedelta(days=1),
            "authorization": {"returnless": False},
        },
        {"status": "authorized", "authorization.returnless": False, "ship_by": {"$lte": NOW}},
        [("ship_by", ASCENDING)],
        100,
    ),
    "returns {buyer.id} -created_at,-_id limit 20 (list_returns)": (
        [[("buyer.id", ASCENDING), ("created_at", DESCENDING)], [("created_at", DESCENDING)]],
        lambda i, n: {"buyer": {"id": f"b{i % 1000}"}, "created_at": _t(i, n)},
        {"buyer.id": "b7"},
        [("created_at", DESCENDING), ("_id", DESCENDING)],
        20,
    ),
    "returns {} -created_at,-_id limit 20 (list_returns, no filter: still reads all)": (
        [[("created_at", DESCENDING)]],
        lambda i, n: {"buyer": {"id": f"b{i % 1000}"}, "created_at": _t(i, n)},
        {},
        [("created_at", DESCENDING), ("_id", DESCENDING)],
        20,
    ),
    "refunds {due_at: $lte, status} (overdue)": (
        [[("status", ASCENDING), ("due_at", ASCENDING)], [("status", ASCENDING), ("pay_lease_until", ASCENDING)]],
        lambda i, n: {"status": "approved" if _rare(i) else "paid", "due_at": NOW - timedelta(days=1)},
        {"status": "approved", "due_at": {"$lte": NOW}},
        None,
        0,
    ),
    "notifications {status, next_attempt_at: $lte, claimed_until: $lt} +next_attempt_at (claim_due)": (
        [[("status", ASCENDING), ("next_attempt_at", ASCENDING)], [("created_at", DESCENDING)]],
        lambda i, n: {
            "status": "pending" if _rare(i) else "sent",
            "next_attempt_at": _t(i, n),
            "claimed_until": LONG_AGO,
            "created_at": _t(i, n),
        },
        {"status": "pending", "next_attempt_at": {"$lte": NOW}, "claimed_until": {"$lt": NOW}},
        [("next_attempt_at", ASCENDING)],
        50,
    ),
    "return_facts {buyer_id, created_at: $gte} (buyer_facts)": (
        [[("buyer_id", ASCENDING), ("created_at", ASCENDING)], [("last_event_at", ASCENDING)]],
        lambda i, n: {"buyer_id": f"b{i % 1000}", "created_at": _t(i, n), "last_event_at": _t(i, n)},
        {"buyer_id": "b7", "created_at": {"$gte": LONG_AGO}},
        None,
        0,
    ),
    "refund_facts {return_id: $in} (refunds_for)": (
        [[("return_id", ASCENDING)], [("issued_at", ASCENDING)]],
        lambda i, n: {"return_id": f"r{i}", "issued_at": _t(i, n)},
        {"return_id": {"$in": [f"r{i}" for i in range(0, 2000, 100)]}},
        None,
        0,
    ),
    "buyers {review_at: $lt} (buyers_due_for_review)": (
        [[("review_at", ASCENDING)], [("flagged", ASCENDING)]],
        lambda i, n: {"review_at": LONG_AGO if _rare(i) else SOON, "flagged": False},
        {"review_at": {"$lt": NOW}},
        None,
        0,
    ),
}


def measure(url: str, sizes: list[int], rounds: int, pid: int | None) -> None:
    client: MongoClient = MongoClient(url, serverSelectionTimeoutMS=10_000, tz_aware=True)
    db = client[f"bench_indexes_{uuid.uuid4().hex[:8]}"]
    try:
        print(f"{'shape':<95} {'N':>6} {'matched':>7} {'ms/query':>9} {'server CPU ms/query':>20}")
        for name, (indexes, make, query, sort, limit) in SHAPES.items():
            for n in sizes:
                coll = db[f"c{uuid.uuid4().hex[:8]}"]
                for keys in indexes:
                    coll.create_index(keys)
                docs = [{"_id": f"d{i:07d}", **make(i, n), "pad": "x" * 300} for i in range(n)]
                for start in range(0, n, 5000):
                    coll.insert_many(docs[start : start + 5000])

                def run(coll: Any = coll, query: Any = query, sort: Any = sort, limit: int = limit) -> int:
                    cursor = coll.find(query)
                    if sort:
                        cursor = cursor.sort(sort)
                    if limit:
                        cursor = cursor.limit(limit)
                    return len(cursor.to_list(None))

                matched = run()
                for _ in range(2):  # JIT and caches first
                    run()
                times: list[float] = []
                cpu = server_cpu(pid)
                while len(times) < rounds and (len(times) < 3 or sum(times) < 3.0):  # at most ~3 s a shape
                    began = time.perf_counter()
                    run()
                    times.append(time.perf_counter() - began)
                cpu_ms = (server_cpu(pid) - cpu) / len(times) * 1000
                print(
                    f"{name:<95} {n:>6} {matched:>7} {statistics.median(times) * 1000:>9.2f} "
                    f"{cpu_ms if pid else float('nan'):>20.2f}",
                    flush=True,
                )
                coll.drop()
    finally:
        client.drop_database(db.name)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jar", type=Path, default=HERE / "target" / "mongo-wire.jar")
    parser.add_argument("--sizes", default="5000,50000")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench_indexes_") as folder:
        port = free_port()
        server = start_server(args.jar, port, Path(folder) / "store.mv")
        try:
            print(f"{args.jar} on port {port}")
            measure(f"mongodb://127.0.0.1:{port}", sizes, args.rounds, server.pid)
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
