"""The faults: planned over the run, then injected into the stack (kills, stops, outages)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.chaos.kinds import BROKER_FAULTS, log
from bench.stack import Stack


@dataclass
class FaultRecord:
    kind: str
    target: str
    at: float  # epoch s: the fault began
    until: float | None = None  # the system was whole again (restarted, resumed, reopened)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Planned:
    kind: str
    target: str
    down_s: float
    position: float  # 0..1: where in the load it lands


def plan_faults(
    counts: dict[str, int],
    down: dict[str, float],
    services: list[str],
    rng: random.Random,
    targets: list[str] | None = None,
) -> list[Planned]:
    """The faults of a run in order. Each kind's faults are spread evenly over the load; kill and
    sigstop hit every service in turn (a random order each round, or `targets` cycled)."""
    planned = []
    for kind, count in counts.items():
        if kind in ("kill", "sigstop"):
            order: list[str] = []
            while len(order) < count:
                if targets:
                    order += targets
                else:
                    round_ = list(services)
                    rng.shuffle(round_)
                    order += round_
        else:
            order = ["notifications" if kind == "notifications-mid-send" else ""] * count
        planned += [Planned(kind, order[k], down[kind], (k + 0.5) / count) for k in range(count)]
    return sorted(planned, key=lambda f: f.position)


class Injector:
    """Injects the planned faults into the stack, spread over [start, end] seconds of the load (each
    at a random point of its slot), one after the other, and always undoes them. A killed service is
    restarted in the background; a broker or store fault waits for those restarts first."""

    def __init__(self, stack: Stack, planned: list[Planned], rng: random.Random, observer_dir: Path) -> None:
        self.stack, self.planned, self.rng, self.observer_dir = stack, planned, rng, observer_dir
        self.records: list[FaultRecord] = []
        self.restarts: dict[str, asyncio.Task[None]] = {}  # service -> its restart under way

    def schedule(self, start: float, end: float) -> list[float]:
        slot = max(end - start, 1.0) / max(len(self.planned), 1)
        return [start + (k + self.rng.uniform(0.2, 0.8)) * slot for k in range(len(self.planned))]

    async def run(self, t0: float, start: float, end: float) -> None:
        for k, (at, fault) in enumerate(zip(self.schedule(start, end), self.planned, strict=True)):
            delay = t0 + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            record = FaultRecord(fault.kind, fault.target, time.time())
            self.records.append(record)
            log(f"fault {k + 1}/{len(self.planned)}: {fault.kind} {fault.target}".rstrip())
            try:
                await self.inject(record, fault.down_s)
            except Exception as exc:  # noqa: BLE001 - recorded; the verification says what it cost
                record.note = (record.note + f" error: {type(exc).__name__}: {exc}").strip()
                log(f"fault {k + 1} failed: {exc}")
            finally:
                if record.until is None and record.target not in self.restarts:
                    record.until = time.time()
        await self.settle()

    async def settle(self) -> None:
        """Wait for the restarts still under way."""
        for task in list(self.restarts.values()):
            await asyncio.wait([task])

    def restart_later(self, service: str, record: FaultRecord) -> None:
        """Restart a killed service in the background: the next fault does not wait for it (except
        one on the same service)."""

        async def restart() -> None:
            try:
                await asyncio.to_thread(self.stack.restart_service, service)
            except Exception as exc:  # noqa: BLE001 - recorded; the verification says what it cost
                record.note = (record.note + f" restart failed: {type(exc).__name__}: {str(exc)[:300]}").strip()
                log(f"restart of {service} failed: {exc}")
            finally:
                record.until = time.time()

        self.restarts[service] = asyncio.create_task(restart())

    async def inject(self, record: FaultRecord, down_s: float) -> None:
        stack, kind = self.stack, record.kind
        if kind in (*BROKER_FAULTS, "store-kill"):
            await self.settle()  # a service starting meanwhile would find no broker or store
        if kind == "kill":
            if record.target in self.restarts:  # not killed again before it is back
                await asyncio.wait([self.restarts.pop(record.target)])
                record.at = time.time()
            await asyncio.to_thread(stack.kill_service, record.target)
            self.restart_later(record.target, record)
            return
        elif kind == "sigstop":
            stack.signal_service(record.target, signal.SIGSTOP)
            try:
                await asyncio.sleep(down_s)
            finally:
                stack.signal_service(record.target, signal.SIGCONT)
        elif kind in BROKER_FAULTS:
            assert stack.broker is not None, "broker faults need the bench's own broker"
            try:
                await asyncio.to_thread(stack.broker.stop if kind == "broker-stop" else stack.broker.kill)
                await asyncio.sleep(down_s)
            finally:
                await asyncio.to_thread(stack.broker.start)
        elif kind == "store-kill":
            try:
                await asyncio.to_thread(stack.kill_mongo)
                await asyncio.sleep(down_s)
            finally:
                await asyncio.to_thread(stack.restart_mongo)
        elif kind == "smtp-outage":
            pid = stack.groups["observer"]
            os.kill(pid, signal.SIGUSR1)
            try:
                await asyncio.sleep(down_s)
            finally:
                os.kill(pid, signal.SIGUSR2)
        elif kind == "notifications-mid-send":
            await self.kill_mid_send(record)
            return
        elif kind != "none":
            raise ValueError(f"unknown fault {kind!r}")
        record.until = time.time()

    async def kill_mid_send(self, record: FaultRecord, wait: float = 60.0) -> None:
        """Arm the SMTP sink: it kill -9s notifications 2 ms after its next 250; then restart it."""
        if "notifications" in self.restarts:
            await asyncio.wait([self.restarts.pop("notifications")])
        pgid = self.stack.groups["notifications"]
        arm = self.observer_dir / "arm-kill"
        tmp = arm.with_suffix(".tmp")
        tmp.write_text(str(pgid))
        tmp.replace(arm)
        deadline = time.monotonic() + wait
        while self.stack.group_alive(pgid) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self.stack.group_alive(pgid):
            arm.unlink(missing_ok=True)
            record.note = f"no email was sent within {wait:.0f} s: not killed"
            record.until = time.time()
            return
        record.at = time.time()
        self.stack.groups.pop("notifications", None)
        self.stack.processes.pop("notifications", None)
        self.restart_later("notifications", record)
