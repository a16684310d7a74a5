"""CPU seconds and peak RSS per process over the measured phase, and how busy the machine was."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def _tree_rss(proc: psutil.Process) -> int:
    return proc.memory_info().rss


class UsageSampler:
    """Samples RSS every `interval` s in a thread; CPU is the difference of cpu_times at stop and start."""

    def __init__(self, processes: dict[str, psutil.Process], interval: float = 0.5) -> None:
        self.processes = processes
        self.interval = interval
        self._start_cpu: dict[str, float] = {}
        self._end_cpu: dict[str, float] = {}
        self._peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._began = self._ended = 0.0
        self._sys_start: Any = None
        self._sys_end: Any = None
        self.timeline: list[dict[str, Any]] = []

    def start(self) -> None:
        self._began = time.monotonic()
        self._sys_start = psutil.cpu_times()
        for name, proc in self.processes.items():
            try:
                self._start_cpu[name] = _cpu(proc)
                self._peak[name] = _tree_rss(proc)
            except psutil.Error:
                pass
        self._thread = threading.Thread(target=self._run, name="usage-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = {name: self._start_cpu.get(name, 0.0) for name in self.processes}
        last_t = time.monotonic()
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            point: dict[str, Any] = {"t": round(now - self._began, 2)}
            for name, proc in self.processes.items():
                try:
                    rss = _tree_rss(proc)
                    cpu = _cpu(proc)
                except psutil.Error:
                    continue
                self._peak[name] = max(self._peak.get(name, 0), rss)
                if now - last_t > 0:
                    point[name] = round(100 * (cpu - last[name]) / (now - last_t))
                last[name] = cpu
            last_t = now
            self.timeline.append(point)

    def stop(self) -> None:
        self._ended = time.monotonic()
        self._sys_end = psutil.cpu_times()
        for name, proc in self.processes.items():
            try:
                self._end_cpu[name] = _cpu(proc)
                self._peak[name] = max(self._peak.get(name, 0), _tree_rss(proc))
            except psutil.Error:
                pass
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def result(self, lifecycles: int) -> dict[str, Any]:
        wall = self._ended - self._began
        per_process = {}
        ours = 0.0
        for name in self.processes:
            if name not in self._end_cpu:
                continue
            cpu = self._end_cpu[name] - self._start_cpu.get(name, 0.0)
            ours += cpu
            per_process[name] = {
                "cpu_s": round(cpu, 2),
                "cpu_pct": round(100 * cpu / wall, 1) if wall else None,
                "cpu_ms_per_lifecycle": round(1000 * cpu / lifecycles, 2) if lifecycles else None,
                "peak_rss_mib": round(self._peak.get(name, 0) / 2**20, 1),
            }
        start, end = self._sys_start, self._sys_end
        idle = (end.idle + getattr(end, "iowait", 0)) - (start.idle + getattr(start, "iowait", 0))
        total = sum(end) - sum(start)
        busy = total - idle
        cores = psutil.cpu_count() or 1
        return {
            "wall_s": round(wall, 2),
            "processes": per_process,
            "machine": {
                "cores": cores,
                "busy_cpu_s": round(busy, 1),
                "busy_pct_of_all_cores": round(100 * busy / total, 1) if total else None,
                "measured_processes_cpu_s": round(ours, 1),
                "other_cpu_s": round(max(0.0, busy - ours), 1),
                "load_avg_1m_at_end": round(psutil.getloadavg()[0], 2),
            },
        }


def gc_pauses(log: Path, since: float, until: float) -> dict[str, Any] | None:
    """The JVM GC pauses of the bench's own MongoDB-wire server between two wall-clock times, from
    its -Xlog:gc:...:time,uptime file (lines "[2026-11-30T17:18:27.288+0000][60.1s] GC(4) Pause Full
    (Allocation Failure) 191M->191M(442M) 528.381ms"); None without that file."""
    if not log.exists():
        return None
    pauses = [
        (m.group(2), float(m.group(3)))
        for m in re.finditer(r"^\[([^\]]+)\]\S* GC\(\d+\) Pause (\w+).* (\d+\.\d+)ms$", log.read_text(), re.M)
        if since <= datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() <= until
    ]
    ms = [p for _, p in pauses]
    return {
        "pauses": len(ms),
        "total_ms": round(sum(ms)),
        "longest_ms": round(max(ms, default=0.0)),
        "over_100_ms": sum(p > 100 for p in ms),
        "full": sum(kind == "Full" for kind, _ in pauses),
        "full_ms": round(sum(p for kind, p in pauses if kind == "Full")),
    }
