"""How long acknowledged writes wait while the journal backend writes a snapshot.

    .venv/bin/python deploy/local/mongo-wire/bench_snapshot_stall.py [--jar JAR] [--docs 70000]
        [--size 1200] [--rate 200] [--clients 8] [--snapshots 4] [--force command|ballast] [--jvm OPTS]

Starts its own server from JAR (journal backend, JVM options as scripts/infra-up gives the shared
one, plus a GC log) on a free port with a fresh folder, loads DOCS documents of about SIZE bytes
(70,000 x 1,200: the ~90 MB store the rate-10 bench reaches), then runs steady writes at RATE per
second (an open loop over CLIENTS threads: half `update_one` by _id, a quarter `insert_one`, a
quarter `find_one_and_update`) while it forces SNAPSHOTS snapshots, 6 s apart: with the server's
`mongoWireSnapshot` command, or for a jar without it by rewriting a 512 KB ballast document until
the journal passes its limit (a new journal file: the snapshot's start; the snapshot file: its
end; the ballast writes are left out of the figures). Each write is classed by when it started:
inside a snapshot window (start to end, plus 1 s) or outside; max / p99 / p50 latency are printed
for both, with the JVM's longest GC pauses. The folder is deleted at the end (`--keep` keeps it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from bench_writes import HERE, free_port
from pymongo import MongoClient

# As scripts/infra-up starts the shared server (the bench's own starts with -Xms64m).
JVM = "-Xms256m -Xmx4g -XX:+UseSerialGC"


def start(jar: Path, port: int, folder: Path, jvm: str, extra: list[str]) -> subprocess.Popen[bytes]:
    log = (folder / "server.log").open("ab")
    command = ["java", *jvm.split(), f"-Xlog:gc:file={folder / 'gc.log'}:time", "-jar", str(jar)]
    command += ["--port", str(port), "--backend", "journal", "--dir", str(folder / "journal"), *extra]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{name:<28} {len(ms):>6} writes   p50 {percentile(ms, 0.5):7.1f} ms   "
        f"p99 {percentile(ms, 0.99):7.1f} ms   max {max(ms, default=float('nan')):7.1f} ms"
    )


def document(i: int, size: int) -> dict[str, object]:
    """A loaded document: nested fields and an array, like a return with its history."""
    history = [{"status": f"s{k}", "at": k, "by": f"user-{i % 97}"} for k in range(4)]
    return {
        "_id": i,
        "n": 0,
        "tag": f"t{i}",
        "order": {"id": f"o{i}", "lines": [1, 2, 3]},
        "history": history,
        "pad": "x" * max(0, size - 250),
    }


class Writers:
    """Open-loop writes: each thread starts its operations on a fixed schedule, late or not."""

    def __init__(self, client: MongoClient, docs: int, rate: float, clients: int) -> None:
        self.coll = client["stall"]["items"]
        self.docs = docs
        self.interval = clients / rate
        self.clients = clients
        self.samples: list[tuple[float, float]] = []  # (start, latency)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(c,), daemon=True) for c in range(clients)]

    def run(self, worker: int) -> None:
        due = time.monotonic() + worker * self.interval / self.clients
        n = 0
        while not self.stop.is_set():
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            began, clock = time.time(), time.monotonic()
            kind = n % 4
            if kind == 0:
                self.coll.insert_one({"_id": f"w{worker}-{n}", "n": 0, "pad": "y" * 300})
            elif kind == 3:
                self.coll.find_one_and_update({"_id": (worker * 7_919 + n * 104_729) % self.docs}, {"$inc": {"n": 1}})
            else:
                self.coll.update_one(
                    {"_id": (worker * 7_919 + n * 104_729) % self.docs}, {"$inc": {"n": 1}, "$set": {"at": began}}
                )
            self.samples.append((began, time.monotonic() - clock))
            n += 1
            due += self.interval


def gc_pauses(log: Path) -> list[tuple[float, float, str]]:
    """(wall-clock time, ms, kind) of every pause in the JVM's GC log (-Xlog:gc:...:time lines:
    "[2026-11-30T17:18:27.288+0000] GC(4) Pause Full (Allocation Failure) 191M->191M(442M) 528.381ms")."""
    text = log.read_text() if log.exists() else ""
    return [
        (datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp(), float(m.group(3)), m.group(2))
        for m in re.finditer(r"\[([^\]]+)\] GC\(\d+\) Pause (\w+).* (\d+\.\d+)ms", text)
    ]


def pause_summary(name: str, pauses: list[tuple[float, float, str]]) -> str:
    full = [ms for _, ms, kind in pauses if kind == "Full"]
    return (
        f"{name:<28} {len(pauses):>6} GC pauses, {sum(ms for _, ms, _ in pauses):7.0f} ms in all, "
        f"longest {max((ms for _, ms, _ in pauses), default=0):5.0f} ms; {len(full)} full ({sum(full):.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jar", type=Path, default=HERE / "target" / "mongo-wire.jar")
    parser.add_argument("--docs", type=int, default=70_000)
    parser.add_argument("--size", type=int, default=1_200, help="bytes per loaded document (about)")
    parser.add_argument("--rate", type=float, default=200.0, help="steady writes per second")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--snapshots", type=int, default=4)
    parser.add_argument(
        "--force",
        choices=["command", "ballast"],
        default="command",
        help="how a snapshot is started: the server's mongoWireSnapshot command, or (for a jar without it) "
        "rewriting a 512 KB ballast document until the journal passes its limit",
    )
    parser.add_argument("--jvm", default=JVM, help=f"the server's JVM options (default: {JVM})")
    parser.add_argument("--keep", action="store_true", help="keep the server's folder (logs, GC log, store)")
    parser.add_argument("--server-option", action="append", default=[], help="passed on to the server")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mongo-wire-stall-"))
    port = free_port()
    server = start(args.jar, port, folder, args.jvm, args.server_option)
    journal = folder / "journal"
    try:
        client: MongoClient = MongoClient(
            f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=60_000, maxPoolSize=64
        )
        items = client["stall"]["items"]
        for start_at in range(0, args.docs, 5_000):
            items.insert_many([document(i, args.size) for i in range(start_at, min(args.docs, start_at + 5_000))])
        writers = Writers(client, args.docs, args.rate, args.clients)
        for t in writers.threads:
            t.start()
        windows: list[tuple[float, float]] = []
        excluded: list[tuple[float, float]] = []
        ballast = client["stall"]["ballast"]
        time.sleep(5)
        for _ in range(args.snapshots):
            if args.force == "command":
                started = time.time()
                done = client.admin.command("mongoWireSnapshot")
                name = f"snapshot-{done['generation']:012d}.bin"
            else:
                journals = set(journal.glob("journal-*.log"))
                began = time.time()
                while set(journal.glob("journal-*.log")) == journals:  # push the journal past its limit
                    ballast.replace_one({"_id": 1}, {"pad": os.urandom(512 << 10)}, upsert=True)
                started = time.time()
                excluded.append((began, started))
                (newest,) = set(journal.glob("journal-*.log")) - journals
                name = newest.name.replace("journal", "snapshot").replace(".log", ".bin")
                while not (journal / name).exists():
                    time.sleep(0.01)
            windows.append((started, time.time() + 1.0))
            print(f"{name}: written in {time.time() - started:.2f} s", flush=True)
            time.sleep(6)
        writers.stop.set()
        for t in writers.threads:
            t.join()

        def inside(t: float, spans: list[tuple[float, float]]) -> bool:
            return any(a <= t <= b for a, b in spans)

        during = [lat for t, lat in writers.samples if inside(t, windows)]
        outside = [lat for t, lat in writers.samples if not inside(t, windows) and not inside(t, excluded)]
        print(f"{args.docs} documents, {args.rate:.0f} writes/s by {args.clients} threads, jar {args.jar}")
        print(summary("during snapshots (+1 s)", during))
        print(summary("outside snapshots", outside))
        worst = [max((lat for t, lat in writers.samples if a <= t <= b), default=0.0) * 1000 for a, b in windows]
        print("slowest write in each snapshot window: " + ", ".join(f"{ms:.0f} ms" for ms in worst))
        measured = [p for p in gc_pauses(folder / "gc.log") if p[0] >= writers.samples[0][0]]
        print(pause_summary("GC during snapshots (+1 s)", [p for p in measured if inside(p[0], windows)]))
        print(pause_summary("GC outside", [p for p in measured if not inside(p[0], windows + excluded)]))
        client.close()
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
