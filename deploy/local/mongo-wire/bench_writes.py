"""Acknowledged writes per second against the local MongoDB-wire server (mongo-wire.jar).

    .venv/bin/python deploy/local/mongo-wire/bench_writes.py [--jar JAR] [--backend journal|h2|memory] [--n 2000]
        [--clients 1,16] [--no-fsync] [--indexes 0..3]

Starts its own server from JAR (default: target/mongo-wire.jar next to this file) on a free port
with a fresh store (journal folder or H2 file) in a temporary folder, and for each client count
measures: N inserts (`insert_one`), N `update_one` by _id (`$inc`), and N `find_one_and_update` by
_id, each acknowledged (w=1), spread over that many threads of one PyMongo client, after N
unmeasured rounds of the three as a warm-up. `--indexes K` gives every collection K of the secondary
indexes the services declare most (seller and time, buyer and time, last event time), and its
documents carry those fields; the updates change none of them, as most of the services' updates do not.
Prints operations per second and the server's CPU time per operation (from /proc: less sensitive
to a busy machine than the rate) and the size of the store on disk. Then stops the server and
deletes the folder. `--url` measures an already running server instead (it writes to a database of
its own and drops it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import ASCENDING, MongoClient, ReturnDocument

HERE = Path(__file__).resolve().parent
INDEXES = (
    [("seller_id", ASCENDING), ("created_at", ASCENDING)],
    [("buyer_id", ASCENDING), ("created_at", ASCENDING)],
    [("last_event_at", ASCENDING)],
)
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def new_document(i: int, indexed: bool) -> dict[str, object]:
    doc: dict[str, object] = {"_id": i, "n": 0, "pad": "x" * 200}
    if indexed:
        at = T0 + timedelta(seconds=i)
        doc |= {"seller_id": f"seller-{i % 50}", "buyer_id": f"buyer-{i % 3000}", "created_at": at, "last_event_at": at}
    return doc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(jar: Path, port: int, folder: Path, backend: str, *extra: str) -> subprocess.Popen[bytes]:
    store = {"journal": ["--dir", str(folder / "journal")], "h2": ["--file", str(folder / "bench.mv")], "memory": []}[
        backend
    ]
    process = subprocess.Popen(
        [
            "java",
            "-Xms64m",
            "-Xmx1g",
            "-XX:+UseSerialGC",
            "-jar",
            str(jar),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend",
            backend,
            *store,
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return process
        except OSError as exc:
            if process.poll() is not None:
                raise SystemExit(f"mongo-wire exited with {process.returncode}") from exc
            time.sleep(0.1)
    process.kill()
    raise SystemExit("mongo-wire did not start within 60 s")


def server_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) the server process has used so far; 0 when unknown."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(n: int, clients: int, op: Callable[[int], object], pid: int | None) -> str:
    """Run op(i) for i in range(n) over `clients` threads: "ops/s (server CPU µs per op)"."""

    def worker(start: int) -> None:
        for i in range(start, n, clients):
            op(i)

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    cpu = server_cpu(pid)
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = n / (time.perf_counter() - began)
    return f"{rate:.0f}" + (f" ({(server_cpu(pid) - cpu) / n * 1e6:.0f} µs)" if pid else "")


def measure(url: str, n: int, client_counts: list[int], pid: int | None = None, indexes: int = 0) -> None:
    client: MongoClient = MongoClient(url, serverSelectionTimeoutMS=10_000, maxPoolSize=64)
    name = f"bench_writes_{uuid.uuid4().hex[:8]}"
    db = client[name]

    def collection(coll_name: str) -> Any:
        for keys in INDEXES[:indexes]:
            db[coll_name].create_index(keys)
        return db[coll_name]

    try:
        warm = collection("warm_up")  # JIT and caches first, not measured
        for i in range(n):
            warm.insert_one(new_document(i, indexes > 0))
            warm.update_one({"_id": i}, {"$inc": {"n": 1}})
            warm.find_one_and_update({"_id": i}, {"$inc": {"n": 1}})
        print(f"per second{' (server CPU per operation)' if pid else ''}")
        print(f"{'clients':>7} {'insert_one':>16} {'update_one':>16} {'find_one_and_update':>20}")
        for clients in client_counts:
            coll = collection(f"c{clients}")
            inserts = timed(n, clients, lambda i, coll=coll: coll.insert_one(new_document(i, indexes > 0)), pid)
            updates = timed(n, clients, lambda i, coll=coll: coll.update_one({"_id": i}, {"$inc": {"n": 1}}), pid)
            fams = timed(
                n,
                clients,
                lambda i, coll=coll: coll.find_one_and_update(
                    {"_id": i}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER
                ),
                pid,
            )
            print(f"{clients:>7} {inserts:>16} {updates:>16} {fams:>20}", flush=True)
    finally:
        client.drop_database(name)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jar", type=Path, default=HERE / "target" / "mongo-wire.jar")
    parser.add_argument("--url", help="measure this running server instead of starting one")
    parser.add_argument("--n", type=int, default=2000, help="operations of each kind per client count")
    parser.add_argument("--clients", default="1,16", help="comma-separated thread counts")
    parser.add_argument(
        "--backend",
        choices=["journal", "h2", "memory"],
        default="journal",
        help="the server's backend (memory: not durable)",
    )
    parser.add_argument("--no-fsync", action="store_true", help="start the server with --no-fsync")
    parser.add_argument(
        "--indexes", type=int, choices=range(len(INDEXES) + 1), default=0, help="secondary indexes per collection"
    )
    args = parser.parse_args()
    client_counts = [int(c) for c in args.clients.split(",")]
    if args.url:
        measure(args.url, args.n, client_counts, indexes=args.indexes)
        return
    if not args.jar.is_file():
        sys.exit(f"{args.jar} is missing: build it with scripts/infra-up (or mvn -q -B package in {HERE})")
    folder = Path(tempfile.mkdtemp(prefix="mongo-wire-bench-"))
    port = free_port()
    server = start_server(args.jar, port, folder, args.backend, *(["--no-fsync"] if args.no_fsync else []))
    try:
        print(
            f"{args.jar} --backend {args.backend}{' --no-fsync' if args.no_fsync else ''} on 127.0.0.1:{port}, "
            f"{args.indexes} secondary indexes per collection, "
            f"store in {folder}, "
            f"{os.cpu_count()} cores"
        )
        measure(f"mongodb://127.0.0.1:{port}/?directConnection=true", args.n, client_counts, server.pid, args.indexes)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        print(f"store on disk: {size / 1e6:.1f} MB")
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
