"""The local MongoDB-wire server rebuilds its non-unique indexes (SecondaryIndex) when it reopens a stored database.

They live in memory only: after a restart (clean, or kill -9) on the same store (the journal
backend's folder, or an H2 file) the server must rebuild them from the collection as it opens the
database, and answer from them: the server's own counters (`mongoWireIndexStats`,
deploy/local/README.md) say which index answered a query and how many documents it examined. The
test starts its own server from deploy/local/mongo-wire/target/mongo-wire.jar on a free port; the
shared server on MONGODB_URL is never touched. (Results with and without an index, and that
indexes answer, are checked against any server by tests/conformance/test_index_use.py.)
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.database import Database

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
JAR = ROOT / "deploy" / "local" / "mongo-wire" / "target" / "mongo-wire.jar"
N = 20_000


class Server:
    def __init__(self, backend: str, store: Path, log: Path) -> None:
        if not JAR.is_file():
            pytest.fail(f"{JAR} is missing: run scripts/infra-up (it builds the jar)", pytrace=False)
        self.log = log.open("ab")
        port = free_port()
        where = ["--dir", str(store)] if backend == "journal" else ["--file", str(store)]
        command = ["java", "-Xmx512m", "-XX:+UseSerialGC", "-jar", str(JAR), "--port", str(port), "--backend", backend]
        command += where
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.client: MongoClient = MongoClient(
            f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=60_000
        )
        self.client.admin.command("ping")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)
        self.log.close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop(signal.SIGKILL)


def _find_answered(db: Database, collection: str, query: dict) -> tuple[list[dict], str, int]:
    """find(QUERY) on COLLECTION: its documents, what answered it (an index's name, or COLLSCAN)
    and how many documents the server examined, from its counters: reset, then this one query."""
    db.command({"mongoWireIndexStats": 1, "reset": True})
    docs = list(db[collection].find(query))
    stats = db.command({"mongoWireIndexStats": 1})
    ours = [entry for entry in stats["collections"] if entry["ns"] == f"{db.name}.{collection}"]
    assert len(ours) == 1, stats
    answers = [(index["name"], index) for index in ours[0]["indexes"] if index["queries"]]
    if ours[0]["collScan"]["queries"]:
        answers.append(("COLLSCAN", ours[0]["collScan"]))
    assert [counts["queries"] for _, counts in answers] == [1], stats
    return docs, answers[0][0], answers[0][1]["docsExamined"]


@pytest.mark.parametrize("backend", ["journal", "h2"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["stop", "kill-9"])
def test_indexes_are_rebuilt_and_used_after_a_restart(tmp_path: Path, servers: list[Server], sig: int, backend: str):
    store = tmp_path / ("store.journal" if backend == "journal" else "store.mv")
    log = tmp_path / "mongo-wire.log"
    first = Server(backend, store, log)
    servers.append(first)
    db = first.client["indexes"]
    db["items"].create_index([("k", ASCENDING)])
    db["items"].create_index([("g", ASCENDING), ("at", DESCENDING)])
    docs = [{"_id": i, "k": i % 2000, "g": f"g{i % 50}", "at": i} for i in range(N)]
    for start in range(0, N, 5000):
        db["items"].insert_many(docs[start : start + 5000])
        db["plain"].insert_many(docs[start : start + 5000])
    db["items"].delete_many({"k": 3})
    db["items"].update_many({"k": 4}, {"$set": {"k": 3}})
    first.stop(sig)

    second = Server(backend, store, log)
    servers.append(second)
    db = second.client["indexes"]
    context = log.read_text(errors="replace")[-3000:]
    assert sorted(d["_id"] for d in db["items"].find({"k": 3})) == list(range(4, N, 2000)), context
    assert [d["_id"] for d in db["items"].find({"g": "g7", "at": {"$lt": 1000}}).sort("at", -1)] == list(
        range(957, 0, -50)
    ), context
    assert "k_1" in db["items"].index_information(), context
    # served from the rebuilt index: it examines just the matching documents, where the same filter
    # reads every document of the unindexed copy
    got, answered, examined = _find_answered(db, "items", {"k": 5})
    assert sorted(d["_id"] for d in got) == list(range(5, N, 2000)), context
    assert (answered, examined) == ("k_1", len(got)), context
    got, answered, examined = _find_answered(db, "items", {"g": "g7", "at": {"$lte": 957}})
    assert (answered, examined) == ("g_1_at_-1", len(got)) and len(got) == 20, context
    got, answered, examined = _find_answered(db, "plain", {"k": 5})
    assert (answered, examined) == ("COLLSCAN", N) and len(got) == N // 2000, context
