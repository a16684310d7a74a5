"""Loaded by the services only under the bench (PYTHONPATH=bench/inject): counts MongoDB commands.

A global pymongo CommandListener tallies every command per (name, collection) with its round-trip
time and dumps the tally to $BENCH_MONGO_OPS_DIR/mongo-ops-<pid>.json every 2 s and at exit. The
services' code is untouched; the listener costs a few microseconds per command.

It also times the cyclic garbage collector (`gc.callbacks`, the collecting thread's CPU time):
collections per generation and their CPU, dumped with the tally under `gc`. The collector's share
of a service's CPU grows with its heap; shared/heap.py is what keeps it small.
"""

from __future__ import annotations

import os

_DIR = os.environ.get("BENCH_MONGO_OPS_DIR")

if _DIR:
    import atexit
    import gc
    import json
    import threading
    import time
    from collections import defaultdict

    from pymongo import monitoring

    _counts: dict[str, int] = defaultdict(int)
    _micros: dict[str, int] = defaultdict(int)
    _pending: dict[int, str] = {}
    _lock = threading.Lock()

    class _Tally(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            name = event.command_name
            target = event.command.get(name)
            if not isinstance(target, str) or name == "getMore":
                target = event.command.get("collection", "")
            key = f"{name} {target}".strip()
            with _lock:
                _counts[key] += 1
                _pending[event.request_id] = key

        def _done(self, event) -> None:
            with _lock:
                key = _pending.pop(event.request_id, event.command_name)
                _micros[key] += event.duration_micros

        succeeded = _done
        failed = _done

    monitoring.register(_Tally())

    _gc_collections = [0, 0, 0]
    _gc_micros = [0, 0, 0]
    _gc_started = [0.0]

    def _collector(phase: str, info: dict) -> None:
        if phase == "start":
            _gc_started[0] = time.thread_time()
            return
        generation = info["generation"]
        _gc_collections[generation] += 1
        _gc_micros[generation] += int((time.thread_time() - _gc_started[0]) * 1e6)

    gc.callbacks.append(_collector)

    def _dump() -> None:
        with _lock:
            data = {
                "pid": os.getpid(),
                "at": time.time(),
                "counts": dict(_counts),
                "micros": dict(_micros),
                "gc": {"collections": list(_gc_collections), "micros": list(_gc_micros)},
            }
        path = os.path.join(_DIR, f"mongo-ops-{os.getpid()}.json")
        try:
            with open(path + ".tmp", "w") as f:
                json.dump(data, f)
            os.replace(path + ".tmp", path)
        except OSError:
            pass

    def _loop() -> None:
        while True:
            time.sleep(2)
            _dump()

    threading.Thread(target=_loop, name="bench-mongo-ops", daemon=True).start()
    atexit.register(_dump)
