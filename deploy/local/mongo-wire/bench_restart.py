"""Store size and restart time of the local MongoDB-wire server after many acknowledged writes.

    .venv/bin/python deploy/local/mongo-wire/bench_restart.py [--jar JAR] [--backend journal|h2] [--n 100000]
        [--snapshot-after BYTES]

Starts its own server (see bench_writes.py) in a temporary folder, inserts N documents of ~300
bytes and then updates each once (`$inc`, by _id), 16 client threads; prints the size of the
store on disk, kill -9s the server, starts it again on the same store and prints how long it took
until it answered a `ping` (and the server CPU time that took) and whether all N documents are
there. Then deletes the folder.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

from bench_writes import HERE, free_port, server_cpu, start_server
from pymongo import MongoClient


def size(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jar", type=Path, default=HERE / "target" / "mongo-wire.jar")
    parser.add_argument("--backend", choices=["journal", "h2"], default="journal")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--snapshot-after", help="journal backend: passed on (bytes of journal that start a snapshot)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mongo-wire-restart-"))
    try:
        port = free_port()
        extra = ["--snapshot-after", args.snapshot_after] if args.snapshot_after else []
        server = start_server(args.jar, port, folder, args.backend, *extra)
        url = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        client: MongoClient = MongoClient(url, maxPoolSize=32)
        coll = client["bench_restart"]["items"]
        clients = 16

        def work(start: int) -> None:
            for i in range(start, args.n, clients):
                coll.insert_one({"_id": i, "n": 0, "tag": f"item-{i}", "pad": "x" * 250})
            for i in range(start, args.n, clients):
                coll.update_one({"_id": i}, {"$inc": {"n": 1}})

        began = time.perf_counter()
        threads = [threading.Thread(target=work, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"{args.backend}: {args.n} inserts + {args.n} updates in {time.perf_counter() - began:.0f} s")
        time.sleep(1)
        print(f"store on disk: {size(folder):.1f} MB ({', '.join(sorted(p.name for p in folder.rglob('*')))})")
        client.close()
        server.kill()
        server.wait()

        began = time.perf_counter()
        server = start_server(args.jar, port, folder, args.backend, *extra)
        client = MongoClient(url, serverSelectionTimeoutMS=120_000)
        client.admin.command("ping")
        restart = time.perf_counter() - began
        cpu = server_cpu(server.pid)
        count = client["bench_restart"]["items"].count_documents({"n": 1})
        print(
            f"restart after kill -9: {restart:.1f} s until ping answered ({cpu:.1f} s server CPU, JVM start included); "
            f"{count} of {args.n} documents updated"
        )
        client.close()
        server.terminate()
        server.wait(30)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
