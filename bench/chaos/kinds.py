"""The fault kinds a run can inject, and the runs' log."""

from __future__ import annotations

import sys
import time
from pathlib import Path

# kind -> (what it does, default number of faults per run, default seconds down)
FAULTS: dict[str, tuple[str, int, float]] = {
    "kill": ("kill -9 of a service (each service in turn, random order), restarted at once", 8, 0),
    "broker-stop": ("RabbitMQ stopped cleanly (rabbitmqctl stop), started again after DOWN s", 2, 5),
    "broker-kill": ("kill -9 of RabbitMQ's Erlang VM, started again after DOWN s", 2, 5),
    "store-kill": ("kill -9 of the MongoDB-wire server, started again on its file after DOWN s", 3, 0),
    "smtp-outage": ("the SMTP server refuses connections for DOWN s", 2, 30),
    "sigstop": ("SIGSTOP of a service (each in turn) for DOWN s, then SIGCONT", 4, 20),
    "notifications-mid-send": ("kill -9 of notifications 2 ms after the SMTP server's 250, restarted", 5, 0),
    "none": ("no fault: the baseline", 0, 0),
}
MATRIX = [k for k in FAULTS if k != "none"]
BROKER_FAULTS = ("broker-stop", "broker-kill")
DOWN_KINDS = ("broker-stop", "broker-kill", "store-kill", "smtp-outage", "sigstop")  # --down means something
STATUS_RANK = {"requested": 1, "authorized": 2, "shipped": 3, "received": 4, "refunded": 5}


_log_file: list[Path] = []  # the current run's chaos.log


def log_to(path: Path) -> None:
    """From now on `log` also appends to `path` (the current run's chaos.log)."""
    _log_file[:] = [path]


def log(message: str) -> None:
    line = f"[chaos {time.strftime('%H:%M:%S')}] {message}"
    print(line, file=sys.stderr, flush=True)
    if _log_file:
        with _log_file[0].open("a") as f:
            f.write(line + "\n")
