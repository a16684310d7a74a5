"""Sampling the services under load with py-spy (from PyPI via uvx; attaches by pid, needs root).

`--gil` keeps only samples of the thread holding the GIL: on 2 cores the question is what keeps each
service's interpreter busy. Output per service: the raw folded stacks (feed them to any flame-graph
tool) and a summary of the frames with the most self and inclusive samples.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy_binary() -> str:
    found = subprocess.run(
        ["uvx", "--from", "py-spy", "python", "-c", "import shutil; print(shutil.which('py-spy') or '')"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    path = found.stdout.strip().splitlines()[-1] if found.stdout.strip() else ""
    if not path:
        raise RuntimeError(f"py-spy not available through uvx: {found.stderr[-500:]}")
    return path


class Profiler:
    def __init__(self, pids: dict[str, int], out: Path, rate: int = 67) -> None:
        self.pids, self.out, self.rate = pids, out, rate
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        binary = py_spy_binary()
        self.out.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            log = (self.out / f"py-spy-{name}.log").open("wb")
            self.procs[name] = subprocess.Popen(
                [
                    binary,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(self.rate),
                    "--gil",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--output",
                    str(self.out / f"profile-{name}.folded"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        time.sleep(1.0)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGINT)  # py-spy writes its output on SIGINT
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()

    def summaries(self, top: int = 25) -> dict[str, Any]:
        return {
            name: summarize(self.out / f"profile-{name}.folded", top)
            for name in self.procs
            if (self.out / f"profile-{name}.folded").exists()
        }


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path}{':' + match['line'] if match['line'] else ''})"


def _function(frame: str) -> str:
    """The frame without its line number: samples of one function add up."""
    return re.sub(r":\d+\)$", ")", _short(frame))


def _module(frame: str) -> str:
    short = _short(frame)
    match = re.search(r"\(([^():]+)", short)
    path = match.group(1) if match else short
    if path.startswith(("services/", "shared/")):
        return path.rsplit(".", 1)[0].replace("/", ".")
    return path.split("/", 1)[0].removesuffix(".py")


def summarize(path: Path, top: int = 25) -> dict[str, Any]:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    ours_inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        functions = [_function(f) for f in frames]
        self_time[functions[-1]] += n
        by_package[_module(frames[-1])] += n
        for name in set(functions):
            inclusive[name] += n
            if name.split("(")[-1].startswith(("services/", "shared/")):
                ours_inclusive[name] += n

    def rows(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"frame": k, "samples": v, "pct": round(100 * v / total, 1)} for k, v in counter.most_common(top)]

    return {
        "samples": total,
        "self_top": rows(self_time),
        "inclusive_top": rows(inclusive),
        "project_inclusive_top": rows(ours_inclusive),
        "self_by_module": rows(by_package),
    }


class JavaSampler:
    """A poor man's profiler for the MongoDB-wire server: `jstack` every 2 s (each one is a JVM start),
    busy workers only.

    Tells which server-side operations the time goes to, and how much of it is full collection
    scans (mongo-java-server's `matchDocumentsFromStream` over every document).
    """

    def __init__(self, pid: int, out: Path, interval: float = 2.0) -> None:
        self.pid, self.out, self.interval = pid, out, interval
        self.samples: list[list[str]] = []
        self._stop = None
        self._thread = None

    def start(self) -> None:
        import shutil
        import threading

        if shutil.which("jstack") is None:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jstack-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                dump = subprocess.run(["jstack", str(self.pid)], capture_output=True, text=True, timeout=10).stdout
            except (subprocess.TimeoutExpired, OSError):
                continue
            for block in dump.split("\n\n"):
                lines = block.strip().splitlines()
                if not lines or not lines[0].startswith('"mongo-server-worker') or "State: RUNNABLE" not in block:
                    continue
                frames = [ln.strip()[3:] for ln in lines if ln.strip().startswith("at ")]
                if frames and "EPoll" not in frames[0] and "epoll" not in frames[0]:
                    self.samples.append(frames)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._thread.join()

    def summary(self, top: int = 15) -> dict[str, Any]:
        (self.out / "mongo-server-jstack.txt").write_text("\n\n".join("\n".join(f) for f in self.samples))
        ops: Counter[str] = Counter()
        leaves: Counter[str] = Counter()
        scans = 0
        for frames in self.samples:
            names = [f.split("(")[0] for f in frames]
            # A full scan goes through the backend's own matchDocuments (every document of the
            # collection); an index lookup through AbstractMongoCollection.matchDocuments(positions).
            if any(n.endswith(("H2Collection.matchDocuments", "MemoryCollection.matchDocuments")) for n in names):
                scans += 1
            commands = [n for n in names if ".AbstractMongoDatabase." in n or ".AbstractMongoBackend." in n]
            entry = commands[0].rsplit(".", 1)[-1] if commands else names[-1].rsplit(".", 2)[-2]
            ops[entry] += 1
            leaves[names[0].rsplit(".", 2)[-2] + "." + names[0].rsplit(".", 1)[-1]] += 1
        n = len(self.samples) or 1
        return {
            "busy_samples": len(self.samples),
            "full_scan_pct": round(100 * scans / n, 1),
            "by_operation": [{"frame": k, "pct": round(100 * v / n, 1)} for k, v in ops.most_common(top)],
            "leaf_top": [{"frame": k, "pct": round(100 * v / n, 1)} for k, v in leaves.most_common(top)],
        }
