"""The local MongoDB-wire server (deploy/local/mongo-wire) keeps every acknowledged write across a
kill -9, with its journal backend (the default) and with its H2 backend.

Each test starts its own server from deploy/local/mongo-wire/target/mongo-wire.jar (built by
scripts/infra-up) on a free port with its store (a journal folder or an H2 file) in a temporary
folder, writes, kills it with SIGKILL straight after the last acknowledgement, starts it again on
the same store and reads. The journal tests also tear the journal's last record as a crash in the
middle of a write would, and kill the server after snapshots were written and more writes came.
The shared server on MONGODB_URL is never touched.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bson import Decimal128, Int64, ObjectId, Regex
from pymongo import ASCENDING, MongoClient, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from tests.ports import free_port

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


BACKENDS = ["journal", "h2"]


class Server:
    """One mongo-wire process on a free port, on the given store (journal folder or H2 file)."""

    def __init__(self, store: Path, log: Path, backend: str = "journal", *options: str) -> None:
        self.port = free_port()
        self.log = log.open("ab")
        where = ["--dir", str(store)] if backend == "journal" else ["--file", str(store)]
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
                backend,
                *where,
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


def _store(tmp_path: Path, backend: str) -> Path:
    return tmp_path / ("journal" if backend == "journal" else "store.mv")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def _log(tmp_path: Path) -> str:
    path = tmp_path / "mongo-wire.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@pytest.mark.parametrize(
    ("backend", "options"),
    [("journal", ()), ("journal", ("--no-fsync",)), ("h2", ()), ("h2", ("--no-fsync",))],
    ids=["journal", "journal-no-fsync", "h2", "h2-no-fsync"],
)
def test_acknowledged_inserts_survive_kill_9(
    tmp_path: Path, servers: list[Server], backend: str, options: tuple[str, ...]
):
    store = _store(tmp_path, backend)
    first = Server(store, tmp_path / "mongo-wire.log", backend, *options)
    servers.append(first)
    coll = first.client["durability"]["items"]
    for i in range(100):
        coll.insert_one({"_id": i, "payload": "x" * 100})  # acknowledged (w=1) one by one
    first.kill9()

    second = Server(store, tmp_path / "mongo-wire.log", backend)
    servers.append(second)
    ids = sorted(doc["_id"] for doc in second.client["durability"]["items"].find({}, {"_id": 1}))
    assert ids == list(range(100)), f"{100 - len(ids)} of 100 acknowledged inserts lost\n{_log(tmp_path)}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_kind_of_acknowledged_write_survives_kill_9(tmp_path: Path, servers: list[Server], backend: str):
    store = _store(tmp_path, backend)
    first = Server(store, tmp_path / "mongo-wire.log", backend)
    servers.append(first)
    db = first.client["durability"]
    db["items"].insert_many([{"_id": i, "n": 0, "tag": f"t{i}"} for i in range(20)])
    db["items"].create_index([("tag", ASCENDING)], unique=True, name="tag_unique")
    db["items"].create_index([("n", ASCENDING)], name="n_plain")
    db["items"].create_index([("other", ASCENDING)], name="dropped_index")
    db["items"].drop_index("dropped_index")
    db["items"].update_one({"_id": 1}, {"$inc": {"n": 1}})
    db["items"].update_many({"_id": {"$gte": 10}}, {"$set": {"bulk": True}})
    db["items"].replace_one({"_id": 2}, {"n": 42, "tag": "t2"})
    assert (
        db["items"].find_one_and_update({"_id": 3}, {"$inc": {"n": 5}}, return_document=ReturnDocument.AFTER)["n"] == 5
    )
    db["items"].update_one({"_id": 99}, {"$set": {"n": 7, "tag": "t99"}}, upsert=True)
    # Values the server generates must come back identical: an upsert's ObjectId, $currentDate.
    generated = db["items"].update_one(
        {"tag": "generated"}, {"$set": {"n": 8}, "$currentDate": {"at": True}}, upsert=True
    )
    generated_doc = db["items"].find_one({"_id": generated.upserted_id})
    assert generated_doc is not None
    db["items"].delete_one({"_id": 4})
    db["items"].find_one_and_delete({"_id": 5})
    db["items"].delete_many({"_id": {"$in": [6, 7]}})
    with pytest.raises(BulkWriteError):  # unordered: 200 and 201 are written, the duplicate is not
        db["items"].insert_many(
            [{"_id": 200, "tag": "t200"}, {"_id": 0, "tag": "dup"}, {"_id": 201, "tag": "t201"}], ordered=False
        )
    db["doomed"].insert_one({"_id": 1})
    db["doomed"].drop()
    db["recreated"].insert_one({"_id": "old"})
    db["recreated"].drop()
    db["recreated"].insert_one({"_id": "new"})
    db.create_collection("created")
    first.client["doomed_db"]["c"].insert_one({"_id": 1})
    first.client.drop_database("doomed_db")
    first.kill9()

    second = Server(store, tmp_path / "mongo-wire.log", backend)
    servers.append(second)
    db = second.client["durability"]
    docs = {doc["_id"]: doc for doc in db["items"].find()}
    context = _log(tmp_path)
    assert sorted(docs, key=str) == sorted({*range(20), 99, 200, 201, generated.upserted_id} - {4, 5, 6, 7}, key=str), (
        context
    )
    assert (docs[1]["n"], docs[2]["n"], docs[3]["n"], docs[99]["n"]) == (1, 42, 5, 7), context
    assert docs[generated.upserted_id] == generated_doc, context
    assert all(docs[i].get("bulk") for i in range(10, 20)), context
    indexes = db["items"].index_information()
    assert {"_id_", "tag_unique", "n_plain"} <= set(indexes) and "dropped_index" not in indexes, context
    with pytest.raises(DuplicateKeyError):  # the unique index is back, with its entries
        db["items"].insert_one({"_id": 500, "tag": "t1"})
    with pytest.raises(DuplicateKeyError):  # and so is the _id index
        db["items"].insert_one({"_id": 1, "tag": "fresh"})
    assert set(db.list_collection_names()) == {"items", "created", "recreated"}, context
    assert [d["_id"] for d in db["recreated"].find()] == ["new"], context
    assert "doomed_db" not in second.client.list_database_names(), context


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_store_file_is_the_one_given(tmp_path: Path, servers: list[Server], backend: str):
    """Guards the tests above: the server really persists to the store given (a clean stop keeps data)."""
    store = _store(tmp_path, backend)
    first = Server(store, tmp_path / "mongo-wire.log", backend)
    servers.append(first)
    first.client["durability"]["items"].insert_one({"_id": "kept"})
    first.stop()
    assert store.is_dir() if backend == "journal" else store.is_file()
    second = Server(store, tmp_path / "mongo-wire.log", backend)
    servers.append(second)
    assert second.client["durability"]["items"].find_one({"_id": "kept"}) == {"_id": "kept"}


def _journals(store: Path) -> list[Path]:
    return sorted(store.glob("journal-*.log"))


def _last_record(data: bytes) -> tuple[int, int]:
    """Where the last record of a journal file begins and ends (after it: the zeros of its reserve)."""
    position, last = 8, 8  # after the 8-byte header; a record is length, crc32c, payload
    while position + 8 <= len(data) and (length := int.from_bytes(data[position : position + 4], "little")):
        last, position = position, position + 8 + length
    return last, position


@pytest.mark.parametrize("damage", ["zeroed-tail", "truncated", "bad-checksum", "header-only"])
def test_a_torn_last_journal_record_is_ignored(tmp_path: Path, servers: list[Server], damage: str):
    """A crash in the middle of writing a record leaves part of it: the restart drops that record
    (its write was never acknowledged), keeps all before it, and what is written after the restart
    survives the next kill -9 too (it goes to a new journal, not after the torn bytes)."""
    store = _store(tmp_path, "journal")
    first = Server(store, tmp_path / "mongo-wire.log")
    servers.append(first)
    coll = first.client["durability"]["items"]
    for i in range(10):
        coll.insert_one({"_id": i, "payload": "x" * 100})
    first.kill9()

    last = _journals(store)[-1]
    data = bytearray(last.read_bytes())
    begin, end = _last_record(bytes(data))
    assert end - begin > 100, "the last record should be insert 9"
    if damage == "zeroed-tail":
        data[end - 7 : end] = bytes(7)  # the record's last bytes never reached the disk
    elif damage == "truncated":
        del data[end - 7 :]  # the file ends inside the record
    elif damage == "bad-checksum":
        data[end - 20] ^= 0xFF  # a byte of insert 9 changed
    else:
        data[end : end + 8] = (100).to_bytes(4, "little") + b"\x01\x02\x03\x04"  # a further record: header only
    last.write_bytes(bytes(data))
    second = Server(store, tmp_path / "mongo-wire.log")
    servers.append(second)
    coll = second.client["durability"]["items"]
    expected = list(range(9)) if damage != "header-only" else list(range(10))
    assert sorted(d["_id"] for d in coll.find()) == expected, _log(tmp_path)
    assert "torn by a crash" in _log(tmp_path)
    coll.insert_one({"_id": 100})
    second.kill9()

    third = Server(store, tmp_path / "mongo-wire.log")
    servers.append(third)
    ids = sorted(d["_id"] for d in third.client["durability"]["items"].find())
    assert ids == [*expected, 100], _log(tmp_path)


def test_writes_after_snapshots_survive_kill_9(tmp_path: Path, servers: list[Server]):
    """With a tiny journal limit the server writes snapshots while the test writes; after more
    writes and a kill -9 the restart (snapshot + journal) has every write, and old files are gone."""
    store = _store(tmp_path, "journal")
    first = Server(store, tmp_path / "mongo-wire.log", "journal", "--snapshot-after", "20000")
    servers.append(first)
    db = first.client["durability"]
    db["items"].create_index([("tag", ASCENDING)], unique=True)
    expected: dict[int, int] = {}
    for i in range(300):
        db["items"].insert_one({"_id": i, "n": 0, "tag": f"t{i}", "pad": "x" * 200})
        expected[i] = 0
        if i % 3 == 0 and i // 2 in expected:
            db["items"].update_one({"_id": i // 2}, {"$inc": {"n": 1}})
            expected[i // 2] += 1
        if i % 7 == 0 and i > 0:
            db["items"].delete_one({"_id": i - 1})
            expected.pop(i - 1)
    deadline = time.monotonic() + 10
    while not list(store.glob("snapshot-*.bin")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(store.glob("snapshot-*.bin")), f"no snapshot was written\n{_log(tmp_path)}"
    for i in range(300, 320):  # more writes after the snapshot
        db["items"].insert_one({"_id": i, "n": 0, "tag": f"t{i}"})
        expected[i] = 0
    db["items"].update_one({"_id": 0}, {"$set": {"n": 100}})
    expected[0] = 100
    db["items"].delete_one({"_id": 1})
    expected.pop(1)
    first.kill9()

    assert len(list(store.glob("snapshot-*.bin"))) == 1, sorted(p.name for p in store.iterdir())
    second = Server(store, tmp_path / "mongo-wire.log")
    servers.append(second)
    db = second.client["durability"]
    docs = {d["_id"]: d["n"] for d in db["items"].find()}
    assert docs == expected, _log(tmp_path)
    with pytest.raises(DuplicateKeyError):
        db["items"].insert_one({"_id": 1000, "tag": "t5"})


class Writer:
    """One thread of steady writes on keys of its own, keeping the state it expects: every write it
    saw acknowledged, applied in order; the one in flight when the server died may or may not have
    happened (its key's `uncertain` pair: before, after)."""

    PRELOADED = 4_000

    def __init__(self, port: int, k: int, threads: int) -> None:
        self.client: MongoClient = MongoClient(
            f"mongodb://127.0.0.1:{port}/?directConnection=true",
            serverSelectionTimeoutMS=10_000,  # a busy machine may take seconds to connect
            socketTimeoutMS=30_000,
            retryWrites=False,
        )
        self.coll = self.client["durability"]["items"]
        self.k, self.threads = k, threads
        self.expected: dict[object, int | None] = {}
        self.uncertain: dict[object, tuple[int | None, int | None]] = {}
        self.acknowledged_at: list[float] = []
        self.stop = False

    def own(self, n: int) -> int:
        """A preloaded document of this thread's share, spread over the collection."""
        return self.k + self.threads * ((n * 7_919) % (self.PRELOADED // self.threads))

    def run(self) -> None:
        n = 0
        while not self.stop:
            key, after, write = self.step(n)
            before = self.expected.get(key, -1 if isinstance(key, int) else None)
            try:
                write()
            except PyMongoError:  # the server was killed under this write: it may or may not be there
                self.uncertain[key] = (before, after)
                return
            self.expected[key] = after
            self.acknowledged_at.append(time.monotonic())
            n += 1

    def step(self, n: int) -> tuple[object, int | None, Callable[[], object]]:
        c, k, pad = self.coll, self.k, "p" * 1_500
        was = lambda key: self.expected.get(key, -1 if isinstance(key, int) else None)  # noqa: E731
        if n % 6 == 0:
            key: object = f"w{k}-{n}"
            return key, n, lambda: c.insert_one({"_id": key, "v": n, "pad": pad})
        if n % 6 == 1:
            key = self.own(n)
            after = n if was(key) is not None else None
            return key, after, lambda: c.update_one({"_id": key}, {"$set": {"v": n}})
        if n % 6 == 2:
            key = f"w{k}-{n - 2}"  # the insert of this round: gone for good
            return key, None, lambda: c.delete_one({"_id": key})
        if n % 6 == 3:
            key = self.own(n + 1)
            after = n if was(key) is not None else None
            return key, after, lambda: c.replace_one({"_id": key}, {"v": n, "pad": pad})
        if n % 6 == 4 and n % 12 == 4:
            key = self.own(n + 2)  # a preloaded document deleted: it must stay deleted
            return key, None, lambda: c.delete_one({"_id": key})
        if n % 6 == 4:
            key = self.own(n + 3)
            after = n if was(key) is not None else None
            return key, after, lambda: c.find_one_and_update({"_id": key}, {"$set": {"v": n}})
        key = f"u{k}-{n}"
        return key, n, lambda: c.update_one({"_id": key}, {"$set": {"v": n}}, upsert=True)


@pytest.mark.parametrize("when", ["after-snapshots", "during-a-snapshot"])
def test_a_snapshot_taken_while_writes_go_on_loses_and_resurrects_nothing(
    tmp_path: Path, servers: list[Server], when: str
):
    """Snapshots copy the collections while four threads keep inserting, updating, replacing,
    upserting and deleting; then kill -9 (after the snapshots, or while one is being written). The
    restart (newest snapshot + the journals from its start) has exactly the acknowledged state:
    every acknowledged write, each updated document with its last value, no deleted document back."""
    store = _store(tmp_path, "journal")
    first = Server(store, tmp_path / "mongo-wire.log")
    servers.append(first)
    items = first.client["durability"]["items"]
    for start in range(0, Writer.PRELOADED, 500):  # ~7 MB, so that a snapshot takes a while
        items.insert_many([{"_id": i, "v": -1, "pad": "p" * 1_500} for i in range(start, start + 500)])
    writers = [Writer(first.port, k, 4) for k in range(4)]
    threads = [threading.Thread(target=w.run) for w in writers]
    for t in threads:
        t.start()
    spans: list[tuple[float, float]] = []
    try:
        deadline = time.monotonic() + 60
        while any(len(w.acknowledged_at) < 5 and not w.uncertain for w in writers) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert all(len(w.acknowledged_at) >= 5 for w in writers), "the writers did not get going"
        for _ in range(3):
            began = time.monotonic()
            done = first.client.admin.command("mongoWireSnapshot")
            spans.append((began, time.monotonic()))
            assert done["documents"] >= Writer.PRELOADED // 2, done
        if when == "during-a-snapshot":
            snapshot = threading.Thread(target=lambda: _ignore_errors(first.client.admin.command, "mongoWireSnapshot"))
            snapshot.start()
            deadline = time.monotonic() + 30
            while not list(store.glob("*.tmp")) and snapshot.is_alive() and time.monotonic() < deadline:
                time.sleep(0.001)
        else:
            time.sleep(0.3)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
    finally:
        for w in writers:
            w.stop = True
        for t in threads:
            t.join(60)
    assert not any(t.is_alive() for t in threads), "a writer is still waiting after the kill"
    leftover = [p.name for p in store.glob("*.tmp")]
    first.kill9()
    acknowledged = sorted(t for w in writers for t in w.acknowledged_at)
    for began, ended in spans:  # the premise: writes were acknowledged while each snapshot was written
        assert any(began < t < ended for t in acknowledged), f"no write acknowledged during a snapshot {spans}"
    if when == "during-a-snapshot":
        assert leftover, "the kill did not land while a snapshot was being written (no .tmp file)"

    second = Server(store, tmp_path / "mongo-wire.log")
    servers.append(second)
    found = {d["_id"]: d["v"] for d in second.client["durability"]["items"].find({}, {"v": 1})}
    expected: dict[object, int | None] = dict.fromkeys(range(Writer.PRELOADED), -1)
    uncertain: dict[object, tuple[int | None, int | None]] = {}
    for w in writers:
        expected.update(w.expected)
        uncertain.update(w.uncertain)
    wrong = {}
    for key in set(found) | set(expected):
        allowed = uncertain.get(key, (expected.get(key),))
        if found.get(key) not in allowed:
            wrong[key] = (found.get(key), allowed)
    assert not wrong, f"(found, allowed) by key: {dict(list(wrong.items())[:20])}\n{_log(tmp_path)}"
    deleted = [key for key, v in expected.items() if v is None and key not in uncertain]
    assert deleted and any(isinstance(key, int) for key in deleted), "the writers deleted nothing: no check"
    assert not list(store.glob("*.tmp")), "an unfinished snapshot was left behind"


def _ignore_errors(call: Callable[..., object], *args: object) -> None:
    try:
        call(*args)
    except PyMongoError:  # the server is killed under it, as intended
        return


def test_a_snapshot_keeps_every_kind_of_value(tmp_path: Path, servers: list[Server]):
    """A snapshot writes each document from a copy of its fields: after a snapshot and a kill -9
    (the journal after the snapshot holds nothing), documents with every value type the services
    store come back equal, field order included."""
    store = _store(tmp_path, "journal")
    first = Server(store, tmp_path / "mongo-wire.log")
    servers.append(first)
    coll = first.client["durability"]["kinds"]
    docs = [
        {
            "_id": ObjectId(),
            "text": "snapshot ✓ ünïcode",
            "int": 7,
            "long": Int64(2**40),
            "double": 1.5,
            "decimal": Decimal128("12.34"),
            "bool": True,
            "none": None,
            "at": datetime(2026, 11, 30, 12, 0, 0, 123000, tzinfo=UTC),
            "bytes": b"\x00\x01binary",
            "nested": {"a": [1, {"b": "c"}, [2, 3]], "empty": {}, "list": []},
            "regex": Regex("^a.*z$", "i"),
            "big": list(range(1_500)),
        },
        {"_id": "string-id", "headers": [["x-one", "1"], ["x-two", "2"]], "z": 1, "a": 2},
        {"_id": 3.5, "order": {"lines": [{"sku": f"s{i}", "qty": i} for i in range(5)]}},
    ]
    coll.insert_many(docs)
    coll.update_one({"_id": "string-id"}, {"$set": {"m": {"n": 1}}, "$unset": {"z": ""}})
    before = list(coll.find().sort("_id", 1))
    done = first.client.admin.command("mongoWireSnapshot")
    assert done["documents"] >= 3, done
    first.kill9()
    assert len(list(store.glob("snapshot-*.bin"))) == 1, sorted(p.name for p in store.iterdir())

    second = Server(store, tmp_path / "mongo-wire.log")
    servers.append(second)
    after = list(second.client["durability"]["kinds"].find().sort("_id", 1))
    assert after == before, _log(tmp_path)
    assert [list(d) for d in after] == [list(d) for d in before]  # field order too
