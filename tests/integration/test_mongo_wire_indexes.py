"""The local MongoDB-wire server rebuilds its non-unique indexes (SecondaryIndex) when it reopens a stored database.

They live in memory only: after a restart (clean, or kill -9) on the same store (the journal
backend's folder, or an H2 file) the server must rebuild them from the collection as it opens the
database, and answer from them. The test starts its
own server from deploy/local/mongo-wire/target/mongo-wire.jar on a free port; the shared server on
MONGODB_URL is never touched. (Results with and without an index, and the speed-up, are checked
against any server by tests/conformance/test_index_use.py.)
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import ASCENDING, DESCENDING, MongoClient

ROOT = Path(__file__).resolve().parents[2]
JAR = ROOT / "deploy" / "local" / "mongo-wire" / "target" / "mongo-wire.jar"
N = 20_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, backend: str, store: Path, log: Path) -> None:
        if not JAR.is_file():
            pytest.fail(f"{JAR} is missing: run scripts/infra-up (it builds the jar)", pytrace=False)
        self.log = log.open("ab")
        port = _free_port()
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


def _median_ms(coll, query: dict) -> float:
    times = []
    for _ in range(7):
        began = time.perf_counter()
        list(coll.find(query))
        times.append(time.perf_counter() - began)
    return sorted(times)[3] * 1000


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
    # served from the rebuilt index: faster than the same filter on the unindexed copy (twice as
    # fast at least; 4x failed once at 3.9x on the journal backend, whose scans are cheap)
    query = {"k": 5}
    _median_ms(db["items"], query)
    with_index, without = _median_ms(db["items"], query), _median_ms(db["plain"], query)
    assert with_index * 2 < without, (with_index, without)
