"""The local MongoDB-wire server (deploy/local/mongo-wire) keeps every acknowledged write across a
kill -9.

Each test starts its own server from deploy/local/mongo-wire/target/mongo-wire.jar (built by
scripts/infra-up) on a free port with an H2 file in a temporary folder, writes, kills it with
SIGKILL straight after the last acknowledgement, starts it again on the same file and reads.
The shared server on MONGODB_URL is never touched.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import ASCENDING, MongoClient, ReturnDocument

ROOT = Path(__file__).resolve().parents[2]
MONGO_WIRE = ROOT / "deploy" / "local" / "mongo-wire"
JAR = MONGO_WIRE / "target" / "mongo-wire.jar"


def _jar() -> Path:
    if not JAR.is_file():
        pytest.fail(f"{JAR} is missing: run scripts/infra-up (it builds the jar)", pytrace=False)
    sources = [MONGO_WIRE / "pom.xml", *(p for p in (MONGO_WIRE / "src").rglob("*") if p.is_file())]
    stale = [str(p.relative_to(ROOT)) for p in sources if p.stat().st_mtime > JAR.stat().st_mtime]
    if stale:
        pytest.fail(
            f"{JAR} is older than {stale}: rebuild it (scripts/infra-up, or "
            f"mvn -q -B -f {MONGO_WIRE / 'pom.xml'} package)",
            pytrace=False,
        )
    return JAR


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One mongo-wire process on a free port, on the given H2 file."""

    def __init__(self, file: Path, log: Path, *options: str) -> None:
        self.port = _free_port()
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [
                "java",
                "-Xms64m",
                "-Xmx512m",
                "-XX:+UseSerialGC",
                "-jar",
                str(_jar()),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--backend",
                "h2",
                "--file",
                str(file),
                *options,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.client: MongoClient = MongoClient(
            f"mongodb://127.0.0.1:{self.port}/?directConnection=true", serverSelectionTimeoutMS=30_000
        )
        self.client.admin.command("ping")

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.client.close()
        self.log.close()

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def _log(tmp_path: Path) -> str:
    path = tmp_path / "mongo-wire.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@pytest.mark.parametrize("options", [(), ("--no-fsync",)], ids=["default", "no-fsync"])
def test_acknowledged_inserts_survive_kill_9(tmp_path: Path, servers: list[Server], options: tuple[str, ...]):
    file = tmp_path / "store.mv"
    first = Server(file, tmp_path / "mongo-wire.log", *options)
    servers.append(first)
    coll = first.client["durability"]["items"]
    for i in range(100):
        coll.insert_one({"_id": i, "payload": "x" * 100})  # acknowledged (w=1) one by one
    first.kill9()

    second = Server(file, tmp_path / "mongo-wire.log")
    servers.append(second)
    ids = sorted(doc["_id"] for doc in second.client["durability"]["items"].find({}, {"_id": 1}))
    assert ids == list(range(100)), f"{100 - len(ids)} of 100 acknowledged inserts lost\n{_log(tmp_path)}"


def test_every_kind_of_acknowledged_write_survives_kill_9(tmp_path: Path, servers: list[Server]):
    file = tmp_path / "store.mv"
    first = Server(file, tmp_path / "mongo-wire.log")
    servers.append(first)
    db = first.client["durability"]
    db["items"].insert_many([{"_id": i, "n": 0, "tag": f"t{i}"} for i in range(20)])
    db["items"].create_index([("tag", ASCENDING)], unique=True, name="tag_unique")
    db["items"].update_one({"_id": 1}, {"$inc": {"n": 1}})
    db["items"].update_many({"_id": {"$gte": 10}}, {"$set": {"bulk": True}})
    db["items"].replace_one({"_id": 2}, {"n": 42, "tag": "t2"})
    assert (
        db["items"].find_one_and_update({"_id": 3}, {"$inc": {"n": 5}}, return_document=ReturnDocument.AFTER)["n"] == 5
    )
    db["items"].update_one({"_id": 99}, {"$set": {"n": 7, "tag": "t99"}}, upsert=True)
    db["items"].delete_one({"_id": 4})
    db["items"].find_one_and_delete({"_id": 5})
    db["doomed"].insert_one({"_id": 1})
    db["doomed"].drop()
    db.create_collection("created")
    first.kill9()

    second = Server(file, tmp_path / "mongo-wire.log")
    servers.append(second)
    db = second.client["durability"]
    docs = {doc["_id"]: doc for doc in db["items"].find()}
    context = _log(tmp_path)
    assert sorted(docs) == sorted({*range(20), 99} - {4, 5}), context
    assert (docs[1]["n"], docs[2]["n"], docs[3]["n"], docs[99]["n"]) == (1, 42, 5, 7), context
    assert all(docs[i].get("bulk") for i in range(10, 20)), context
    assert "tag_unique" in db["items"].index_information(), context
    assert set(db.list_collection_names()) == {"items", "created"}, context


def test_the_store_file_is_the_one_given(tmp_path: Path, servers: list[Server]):
    """Guards the two tests above: the server really persists to --file (a clean stop keeps data)."""
    file = tmp_path / "store.mv"
    first = Server(file, tmp_path / "mongo-wire.log")
    servers.append(first)
    first.client["durability"]["items"].insert_one({"_id": "kept"})
    first.stop()
    assert file.is_file()
    second = Server(file, tmp_path / "mongo-wire.log")
    servers.append(second)
    assert second.client["durability"]["items"].find_one({"_id": "kept"}) == {"_id": "kept"}
