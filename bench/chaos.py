"""Fault-injection runs: N lifecycles paced so the faults land mid-load, one fault kind per run,
then the bench's exactly-once verification, counted as lost / duplicated / stuck.

    scripts/chaos --fault kill --returns 100                 # one fault kind
    scripts/chaos --fault all --returns 100                  # the matrix: every kind, one run each

The stack is the bench's (bench/stack.py) with everything a fault may hit of its own: its own
RabbitMQ node, MongoDB-wire server and SMTP sink on spare ports (--port-base), so the servers on
the default ports that everyone else uses are never stopped or killed. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shlex
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import verify
from bench.load import EXPECTED_TEMPLATES, TRANSPORT_ERRORS, Driver, Outcome, Plan, Reply, Tokens, publish_orders
from bench.stack import MONGO_JAR, REPO, SERVICES, Stack, StackConfig, pick_port_base

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


def log(message: str) -> None:
    line = f"[chaos {time.strftime('%H:%M:%S')}] {message}"
    print(line, file=sys.stderr, flush=True)
    if _log_file:
        with _log_file[0].open("a") as f:
            f.write(line + "\n")


# ---- the load, paced and resilient ----------------------------------------------------------------


@dataclass
class ChaosOutcome(Outcome):
    acked: int = 0  # the furthest step the server acknowledged: 1 created, 2 authorized, 3 shipped, 4 received
    lost_ack: str | None = None  # an acknowledged write the server no longer knew
    http_retries: int = 0  # calls repeated after a connection error, a timeout or a 5xx


class ChaosDriver(Driver):
    """The bench's lifecycle, as a careful client drives it through faults: every call is repeated
    after a connection error, a timeout or a 5xx (create with its Idempotency-Key; a transition that
    answers 409 is looked up, since an earlier attempt may have gone through). Lifecycles start at
    `rate` per second, so the load lasts N / rate seconds whatever the faults do."""

    def __init__(
        self, base_urls: dict[str, str], tokens: Tokens, concurrency: int, *, rate: float, step_timeout: float = 300.0
    ) -> None:
        super().__init__(base_urls, tokens, concurrency)
        self.rate, self.step_timeout = rate, step_timeout
        self.t0 = 0.0
        self.agent = tokens("agent", "bench", "returns")

    async def attempt(
        self,
        service: str,
        method: str,
        path: str,
        label: str,
        *,
        headers: dict[str, str],
        json: Any = None,
        out: ChaosOutcome,
    ) -> Reply | None:
        try:
            response = await self.call(service, method, path, label, headers=headers, json=json)
        except TRANSPORT_ERRORS:  # refused, reset, timed out: the service is down or frozen
            out.http_retries += 1
            await asyncio.sleep(0.5)
            return None
        if response.status_code >= 500:
            out.http_retries += 1
            await asyncio.sleep(0.5)
            return None
        return response

    async def status(self, return_id: str, out: ChaosOutcome) -> str | None:
        """The return's status now; "" when the server no longer has it."""
        deadline = time.monotonic() + self.step_timeout
        while time.monotonic() < deadline:
            r = await self.attempt(
                "returns", "GET", f"/v1/returns/{return_id}", "GET /v1/returns/{id}", headers=self.agent, out=out
            )
            if r is not None:
                if r.status_code == 404:
                    return ""
                if r.status_code == 200:
                    return r.json()["status"]
        return None

    async def lifecycle(self, plan: Plan) -> ChaosOutcome:
        delay = self.t0 + plan.index / self.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        out = ChaosOutcome(plan)
        buyer = self.tokens("buyer", plan.buyer_id, "returns")
        seller = self.tokens("seller", plan.seller_id, "returns")
        try:
            body = {"order_id": plan.order_id, "lines": [{"line_id": "L1", "quantity": 1, "reason_code": plan.reason}]}
            headers = buyer | {"Idempotency-Key": f"bench-{plan.run_id}-{plan.index}"}
            deadline = time.monotonic() + self.step_timeout
            while True:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"create: no answer in {self.step_timeout:.0f} s")
                r = await self.attempt(
                    "returns", "POST", "/v1/returns", "POST /v1/returns", headers=headers, json=body, out=out
                )
                if r is None:
                    continue
                if r.status_code == 201:
                    break
                if (r.status_code == 422 and "no delivered order" in r.text) or r.status_code == 409:
                    out.retries += 1  # the order not in yet, or the same key still in progress
                    await asyncio.sleep(0.2)
                    continue
                raise RuntimeError(f"create: HTTP {r.status_code}: {r.text[:300]}")
            out.return_id = r.json()["return_id"]
            out.acked = 1
            steps = [
                ("authorize", seller, {}, 2),
                ("ship", buyer, {"carrier": "UPS", "tracking_number": f"1Z{plan.index:08d}"}, 3),
                ("receive", seller, {"lines": [{"line_id": "L1", "quantity": 1, "condition": plan.condition}]}, 4),
            ]
            for action, who, payload, rank in steps:
                if action == "receive":
                    out.receive_started = time.time()
                if not await self.transition(out, action, who, payload, rank):
                    return out
            out.receive_done = time.time()
        except Exception as exc:  # noqa: BLE001 - reported per lifecycle, the run goes on
            out.error = f"{type(exc).__name__}: {exc}"[:500]
        return out

    async def transition(
        self, out: ChaosOutcome, action: str, who: dict[str, str], payload: dict[str, Any], rank: int
    ) -> bool:
        rid = out.return_id
        deadline = time.monotonic() + self.step_timeout
        conflicts = 0
        while time.monotonic() < deadline:
            r = await self.attempt(
                "returns",
                "POST",
                f"/v1/returns/{rid}/{action}",
                f"POST /v1/returns/{{id}}/{action}",
                headers=who,
                json=payload,
                out=out,
            )
            if r is None:
                continue
            if r.status_code == 200:
                out.acked = rank
                return True
            if r.status_code in (404, 409):
                status = await self.status(rid, out)
                if status == "":
                    out.lost_ack = f"{action}: the return is gone although its creation was acknowledged"
                    out.error = out.lost_ack
                    return False
                current = STATUS_RANK.get(status or "", 0)
                if current >= rank:  # an earlier attempt went through
                    out.acked = rank
                    return True
                if current < out.acked:
                    out.lost_ack = f"{action}: the return is {status} although step {out.acked} was acknowledged"
                    out.error = out.lost_ack
                    return False
                conflicts += 1
                if conflicts > 20:
                    raise RuntimeError(f"{action}: HTTP {r.status_code} and the return is {status}: {r.text[:200]}")
                await asyncio.sleep(0.2)
                continue
            raise RuntimeError(f"{action}: HTTP {r.status_code}: {r.text[:300]}")
        raise RuntimeError(f"{action}: no answer in {self.step_timeout:.0f} s")

    async def run(self, plans: list[Plan], progress=None) -> list[Outcome]:
        self.t0 = time.monotonic()
        return await super().run(plans, progress)


# ---- the faults ---------------------------------------------------------------------------------


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


# ---- waiting for the effects --------------------------------------------------------------------

TEMPLATES_BY_STEP = {
    1: ("buyer/return_requested", "seller/new_request"),
    2: ("buyer/return_authorized",),
    3: ("seller/return_shipped",),
    4: ("buyer/item_received", "seller/item_received", "buyer/refunded"),
}


def expected_templates(acked: int) -> set[str]:
    out: set[str] = set()
    for step in range(1, acked + 1):
        out.update(TEMPLATES_BY_STEP[step])
    return out


assert set().union(*TEMPLATES_BY_STEP.values()) == EXPECTED_TEMPLATES


async def drain(
    config: StackConfig,
    tokens: Tokens,
    outcomes: list[ChaosOutcome],
    observer_dir: Path,
    *,
    timeout: float,
    quiet_timeout: float,
) -> tuple[float | None, str]:
    """Wait until every effect is in and nothing is left to do: the witness saw each received
    return refunded, the sink got every email owed, the notification log is all sent, the refunds
    of those returns are all issued, and no message waits in an inbox or retry queue. Returns when
    that first held (epoch s), or None and why not (no progress for `quiet_timeout` s, or `timeout`)."""
    received = {o.return_id for o in outcomes if o.acked >= 4}
    owed = sum(len(expected_templates(o.acked)) for o in outcomes if o.return_id)
    deadline = time.monotonic() + timeout
    last_change, last_sizes = time.monotonic(), None
    reason = "timeout"
    async with httpx.AsyncClient(timeout=60) as client:
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            events = verify.read_jsonl(observer_dir / "events.jsonl")
            mails = verify.read_jsonl(observer_dir / "mails.jsonl")
            sizes = (len(events), len(mails))
            if sizes != last_sizes:
                last_sizes, last_change = sizes, time.monotonic()
            refunded = {e["subject"] for e in events if e["type"] == "return.refunded"}
            mailed = {m["notification_id"] for m in mails}
            if received <= refunded and len(mailed) >= owed:
                try:
                    if await _settled(config, tokens, client, owed):
                        return time.time(), "drained"
                except (httpx.HTTPError, OSError, RuntimeError):
                    pass
            if time.monotonic() - last_change > quiet_timeout:
                reason = f"no new event or email for {quiet_timeout:.0f} s"
                break
    return None, reason


async def _settled(config: StackConfig, tokens: Tokens, client: httpx.AsyncClient, owed: int) -> bool:
    log_ = await verify.list_all(
        client, config.base_url("notifications") + "/v1/notifications", tokens("agent", "bench", "notifications")
    )
    if len(log_) < owed or any(n.get("status") != "sent" for n in log_):
        return False
    depths = await verify.queue_depths(config)
    return not any(v for k, v in depths.items() if not k.endswith(".dead"))


# ---- one run ------------------------------------------------------------------------------------


@dataclass
class Options:
    fault: str = "kill"  # one kind, or several joined by "+" (their faults interleaved in one run)
    returns: int = 100
    concurrency: int = 8
    rate: float = 1.0
    faults: int | dict[str, int] | None = None  # per kind; default: FAULTS[kind][1]
    down_s: float | None = None  # default: FAULTS[kind][2]
    services: list[str] = field(default_factory=lambda: list(SERVICES))
    targets: list[str] | None = None  # kill / sigstop hit these in this order (cycled) instead of at random
    sellers: int = 10
    seed: int | None = None
    port_base: int = 29000
    drain_timeout: float = 600.0
    quiet_timeout: float = 240.0
    amqp_url: str | None = None  # a shared broker (not for broker faults); default: the run's own node
    mongo_jar: Path = MONGO_JAR
    services_tree: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    out: Path | None = None
    keep: bool = False
    command: str = ""


def snapshot(options: Options, out: Path) -> tuple[Path, Path, str]:
    """The code a run restarts must be the code it started: copy services/ and shared/ of the
    checkout (or of --services-tree) and the MongoDB-wire jar into the run's folder and run those."""
    import shutil
    import subprocess

    source = options.services_tree or REPO
    tree = out / "tree"
    for part in ("services", "shared"):
        shutil.copytree(
            source / part, tree / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True
        )
    if not options.mongo_jar.exists():
        raise RuntimeError(f"{options.mongo_jar} is missing: run scripts/infra-up once (it builds it)")
    jar = out / "mongo-wire.jar"
    shutil.copy2(options.mongo_jar, jar)
    try:
        head = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=source, capture_output=True, text=True
            ).stdout.strip()
            or "?"
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "services", "shared"], cwd=source, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        head, dirty = "?", ""
    code = (
        f"{source}: services/ and shared/ at {head}"
        + (" + uncommitted changes" if dirty else "")
        + f"; jar {options.mongo_jar}"
    )
    return tree, jar, code


async def run(options: Options) -> dict[str, Any]:
    """One fault run: start the stack, load it, inject the faults, drain, verify. The result dict
    (also written to <out>/result.json) has the tally under "tally" and "ok"."""
    kind = options.fault
    kinds = kind.split("+")
    for k in kinds:
        if k not in FAULTS:
            raise ValueError(f"unknown fault {k!r}; one of {', '.join(FAULTS)}")
    given = options.faults
    counts = {
        k: (given.get(k, FAULTS[k][1]) if isinstance(given, dict) else FAULTS[k][1] if given is None else given)
        for k in kinds
        if k != "none"
    }
    down = {k: FAULTS[k][2] if options.down_s is None else options.down_s for k in kinds}
    seed = options.seed if options.seed is not None else secrets.randbits(32)
    rng = random.Random(seed)
    if options.amqp_url and set(kinds) & set(BROKER_FAULTS):
        raise ValueError("broker faults run on the bench's own broker only: drop --amqp-url")
    planned = plan_faults(counts, down, options.services, rng, options.targets)
    count = len(planned)
    down_s = ", ".join(f"{k} {v:g} s" for k, v in down.items() if k in DOWN_KINDS)
    run_id = "c" + time.strftime("%m%d%H%M") + secrets.token_hex(2)
    out = (options.out or REPO / ".local" / "chaos" / run_id).resolve()
    out.mkdir(parents=True, exist_ok=True)
    _log_file[:] = [out / "chaos.log"]
    port_base = pick_port_base(options.port_base, own_broker=True)
    tree, jar, code = snapshot(options, out)
    config = StackConfig(
        run_id=run_id,
        out=out,
        port_base=port_base,
        amqp_url=options.amqp_url or "",
        own_broker=options.amqp_url is None,
        durable_witness=True,
        payment="ledger",
        count_mongo_ops=False,
        mongo_jar=jar,
        services_tree=tree,
        extra_env=dict(options.env),
    )
    stack = Stack(config)
    downs = f" (down {down_s})" if down_s else ""
    log(
        f"run {run_id}: {kind} x{count}{downs} over N={options.returns} at {options.rate:g}/s, "
        f"C={options.concurrency}, seed {seed}, ports {port_base}+, output in {out}"
    )
    result: dict[str, Any] = {
        "run": {
            "run_id": run_id,
            "fault": kind,
            "faults_planned": count,
            "down_s": down_s,
            "returns": options.returns,
            "rate": options.rate,
            "concurrency": options.concurrency,
            "seed": seed,
            "command": options.command,
            "services": options.services,
            "env": options.env,
            "code": code,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    }
    driver: ChaosDriver | None = None
    try:
        stack.find_broker()
        stack.start_mongo()
        observer_dir = stack.start_observer()
        stack.start_services()
        log(f"up: broker {config.amqp_url}, store {stack.mongodb_url}, services {port_base + 1}-{port_base + 4}")
        tokens = Tokens(config.jwt_secret)
        driver = ChaosDriver({s: config.base_url(s) for s in SERVICES}, tokens, options.concurrency, rate=options.rate)
        plans = [Plan(i, run_id, options.sellers, "ledger") for i in range(options.returns)]
        await driver.put_policies(run_id, options.sellers)
        await publish_orders(config.amqp_url, config.orders_exchange, plans)
        from bench.run import wait_for_orders

        await wait_for_orders(config, stack)
        period_from = datetime.now(UTC) - timedelta(minutes=5)

        load_s = options.returns / options.rate
        injector = Injector(stack, planned, rng, observer_dir)
        began = time.time()
        t0 = time.monotonic()
        warmup = min(10.0, 0.1 * load_s)
        faults = asyncio.create_task(injector.run(t0, warmup, max(load_s, warmup + 1)))
        last = [0.0]

        def progress(done: int) -> None:
            if time.monotonic() - last[0] > 15 or done == len(plans):
                last[0] = time.monotonic()
                log(f"{done}/{len(plans)} lifecycles through receive")

        outcomes: list[ChaosOutcome] = await driver.run(plans, progress)  # type: ignore[assignment]  # ChaosDriver makes ChaosOutcomes
        load_done = time.time()
        await faults
        faults_done = max([load_done] + [r.until or r.at for r in injector.records])
        log(f"load done after {load_done - began:.0f} s, faults done after {faults_done - began:.0f} s; draining")
        for service in SERVICES:  # a restart that failed: the verification needs every service
            if not await asyncio.to_thread(stack.service_ready, service):
                log(f"{service} is not up after the faults: starting it again")
                if service in stack.groups and stack.group_alive(stack.groups[service]):
                    await asyncio.to_thread(stack.kill_service, service)
                await asyncio.to_thread(stack.restart_service, service)
        drained_at, why = await drain(
            config, tokens, outcomes, observer_dir, timeout=options.drain_timeout, quiet_timeout=options.quiet_timeout
        )
        log(f"drained after {drained_at - faults_done:.0f} s" if drained_at else f"not drained: {why}")
        await asyncio.sleep(3)  # late duplicates

        events = verify.read_jsonl(observer_dir / "events.jsonl")
        mails = verify.read_jsonl(observer_dir / "mails.jsonl")
        tally = await verify.fault_tally(
            config, tokens, outcomes, stack.mongodb_url, events, mails, options.sellers, period_from
        )
        depths = await verify.queue_depths(config)
        tally["queues"] = {
            "dead": sum(v or 0 for k, v in depths.items() if k.endswith(".dead")),
            "waiting": sum(v or 0 for k, v in depths.items() if not k.endswith(".dead")),
            "missing": sorted(k for k, v in depths.items() if v is None),
        }
        findings = verify.log_findings(stack.logs)
        kills = verify.read_jsonl(observer_dir / "faults.jsonl")
        result.update(
            {
                "faults": [r.as_dict() for r in injector.records],
                "sink_faults": kills,
                "timing": {
                    "load_s": round(load_done - began, 1),
                    "faults_done_s": round(faults_done - began, 1),
                    "drained_s": round(drained_at - began, 1) if drained_at else None,
                    "drain_after_last_fault_s": round(drained_at - faults_done, 1) if drained_at else None,
                    "not_drained": None if drained_at else why,
                },
                "tally": tally,
                "queue_depths": depths,
                "log_findings": findings,
                "client": {
                    "http_retries": sum(o.http_retries for o in outcomes),
                    "incomplete": [
                        {"index": o.plan.index, "return_id": o.return_id, "acked": o.acked, "error": o.error}
                        for o in outcomes
                        if o.acked < 4
                    ][:20],
                },
            }
        )
        result["ok"] = verdict(result)
        (out / "result.json").write_text(json.dumps(result, indent=1, default=str))
        print(render_run(result))
        log(f"result: {out / 'result.json'}")
        return result
    finally:
        if driver is not None:
            await driver.close()
        stack.stop(keep_data=options.keep)
        if not options.keep:
            from bench.run import cleanup

            await cleanup(config, stack.mongodb_url, own_mongo=True)
        stack.stop_broker(keep_data=options.keep)


def verdict(result: dict[str, Any]) -> bool:
    """Exactly-once held: nothing lost, duplicated or stuck (refunds, payments, events), every email
    owed arrived, nothing parked or waiting, and it drained. Email duplicates are counted apart.
    A run in which no lifecycle was acknowledged through receive checked nothing, and fails."""
    t = result["tally"]
    money_events = all(
        t[what][k] == 0
        for what in ("returns", "refunds", "payments", "events")
        for k in ("lost", "duplicated", "stuck")
    )
    return (
        money_events
        and t["returns"]["expected"] > 0
        and t["refunds"]["expected"] > 0
        and t["emails"]["missing"] == 0
        and not t["metrics_off"]
        and t["queues"]["dead"] == 0
        and t["queues"]["waiting"] == 0
        and not t["queues"]["missing"]
        and result["timing"]["drained_s"] is not None
    )


# ---- reporting ----------------------------------------------------------------------------------

MATRIX_HEADER = (
    "| fault | N | faults | lost (ret/ref/pay/ev) | duplicated (ref/pay/ev) | stuck (ref/pay/ev) "
    "| emails dup / missing | parked | drain after last fault | ok |"
)


def matrix_row(result: dict[str, Any]) -> str:
    r, t, timing = result["run"], result["tally"], result["timing"]
    done = sum(1 for f in result["faults"] if not f["note"].startswith("no email"))
    drain = (
        f"{timing['drain_after_last_fault_s']:.0f} s"
        if timing["drained_s"] is not None
        else f"not drained ({timing['not_drained']})"
    )
    lost = "/".join(str(t[k]["lost"]) for k in ("returns", "refunds", "payments", "events"))
    dup = "/".join(str(t[k]["duplicated"]) for k in ("refunds", "payments", "events"))
    stuck = "/".join(str(t[k]["stuck"]) for k in ("refunds", "payments", "events"))
    return (
        f"| {r['fault']} | {r['returns']} | {done} | {lost} | {dup} | {stuck} | "
        f"{t['emails']['duplicated']} / {t['emails']['missing']} | {t['queues']['dead']} | {drain} | "
        f"{'yes' if result['ok'] else '**no**'} |"
    )


def render_run(result: dict[str, Any]) -> str:
    r, t = result["run"], result["tally"]
    lines = [
        f"\n=== chaos {r['run_id']}: {r['fault']} x{len(result['faults'])} over N={r['returns']} (seed {r['seed']})",
        MATRIX_HEADER,
        "|---" * 10 + "|",
        matrix_row(result),
        "",
    ]
    for what in ("returns", "refunds", "payments", "events", "emails"):
        detail = {k: v for k, v in t[what].items() if k != "examples"}
        examples = f"  e.g. {t[what]['examples']}" if t[what].get("examples") else ""
        lines.append(f"{what:9} {json.dumps(detail)}{examples}")
    lines.append(f"metrics   off: {t['metrics_off'] or 'none'}")
    lines.append(f"queues    {json.dumps(t['queues'])}")
    lines.append(f"timing    {json.dumps(result['timing'])}")
    lines.append(
        f"client    {result['client']['http_retries']} calls repeated; "
        f"{len(result['client']['incomplete'])} lifecycles not through receive"
    )
    for f in result["faults"]:
        lines.append(
            f"  fault {f['kind']} {f['target']} at {time.strftime('%H:%M:%S', time.localtime(f['at']))}"
            f" back after {(f['until'] or f['at']) - f['at']:.1f} s {f['note']}"
        )
    lines.append(f"verdict: {'exactly once held' if result['ok'] else 'FAILED'}")
    return "\n".join(lines)


# ---- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/chaos",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="faults:\n"
        + "\n".join(
            f"  {k:24} {v[0]} (default {v[1]} per run" + (f", DOWN {v[2]:g} s" if v[2] else "") + ")"
            for k, v in FAULTS.items()
        ),
    )
    p.add_argument(
        "--fault",
        "-f",
        default="kill",
        metavar="KIND",
        help="the fault kind of the run (below); `all` runs the matrix (every kind but none, one run "
        "each); kinds joined by + interleave in one run (e.g. kill+broker-kill)",
    )
    p.add_argument("--returns", "-n", type=int, default=100, help="lifecycles per run (default 100)")
    p.add_argument(
        "--rate",
        type=float,
        default=1.0,
        help="lifecycles started per second (default 1): the load lasts N / rate s and the faults are spread over it",
    )
    p.add_argument("--concurrency", "-c", type=int, default=8, help="lifecycles in flight at most (default 8)")
    p.add_argument("--faults", type=int, default=None, help="faults per run (default: per kind, see below)")
    p.add_argument("--down", type=float, default=None, help="seconds a stopped thing stays down (default: per kind)")
    p.add_argument("--services", default=",".join(SERVICES), help="services that kill / sigstop may hit")
    p.add_argument(
        "--targets",
        default=None,
        help="kill / sigstop hit these services in this order "
        "(comma-separated, cycled) instead of each in turn at random",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed of the fault times and targets")
    p.add_argument(
        "--port-base",
        type=int,
        default=29000,
        help="first port block to try (services +1..+4, store +17, SMTP +25, broker +72/+73)",
    )
    p.add_argument("--drain-timeout", type=float, default=600.0, help="longest wait for the effects after the load")
    p.add_argument(
        "--quiet-timeout",
        type=float,
        default=240.0,
        help="stop waiting when no event or email arrived for this long (default 240 s: "
        "longer than the notification (90 s) and refund (120 s + 30 s job) leases)",
    )
    p.add_argument(
        "--amqp-url", default=None, help="use this broker instead of the run's own node (not for broker faults)"
    )
    p.add_argument("--mongo-jar", type=Path, default=MONGO_JAR, help="launcher jar of the run's MongoDB-wire server")
    p.add_argument(
        "--services-tree",
        type=Path,
        default=None,
        help="run the services from this copy of the repo (default: this checkout); either way "
        "services/ and shared/ are copied at the start, so restarts run the same code",
    )
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra settings for the services")
    p.add_argument("--out", type=Path, default=None, help="result directory (default .local/chaos/<run id>)")
    p.add_argument("--keep", action="store_true", help="leave the run's data behind")
    p.add_argument(
        "--max-email-duplicates",
        type=int,
        default=None,
        help="also fail when more emails than this were delivered twice (default: counted, not failed)",
    )
    return p.parse_args(argv)


async def main(args: argparse.Namespace) -> int:
    kinds = MATRIX if args.fault == "all" else [args.fault]
    for k in (k for kind in kinds for k in kind.split("+")):
        if k not in FAULTS:
            raise SystemExit(f"scripts/chaos: unknown fault {k!r}; one of {', '.join(FAULTS)}, all")
    results = []
    base_cmd = list(sys.argv[1:])
    for kind in kinds:
        command = "scripts/chaos " + " ".join(shlex.quote(a) for a in _with_fault(base_cmd, kind))
        options = Options(
            fault=kind,
            returns=args.returns,
            concurrency=args.concurrency,
            rate=args.rate,
            faults=args.faults,
            down_s=args.down,
            services=args.services.split(","),
            seed=args.seed,
            targets=args.targets.split(",") if args.targets else None,
            port_base=args.port_base,
            drain_timeout=args.drain_timeout,
            quiet_timeout=args.quiet_timeout,
            amqp_url=args.amqp_url,
            mongo_jar=args.mongo_jar,
            services_tree=args.services_tree,
            env=dict(e.split("=", 1) for e in args.env),
            out=(args.out / kind if args.out and len(kinds) > 1 else args.out),
            keep=args.keep,
            command=command,
        )
        result = await run(options)
        if (
            args.max_email_duplicates is not None
            and result["tally"]["emails"]["duplicated"] > args.max_email_duplicates
        ):
            result["ok"] = False
        results.append(result)
    if len(results) > 1:
        table = "\n".join([MATRIX_HEADER, "|---" * 10 + "|", *(matrix_row(r) for r in results)])
        commands = "\n".join(
            f"- {r['run']['fault']}: `{r['run']['command']}` (seed {r['run']['seed']}, run {r['run']['run_id']})"
            for r in results
        )
        print(f"\n=== the fault matrix\n{table}\n\n{commands}")
        if args.out:
            (args.out / "matrix.md").write_text(table + "\n\n" + commands + "\n")
    return 0 if all(r["ok"] for r in results) else 1


def _with_fault(argv: list[str], kind: str) -> list[str]:
    """The command line of one run of the matrix: --fault KIND instead of --fault all."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--fault", "-f"):
            skip = True
            continue
        if a.startswith("--fault="):
            continue
        out.append(a)
    return ["--fault", kind, *out]


def cli(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.exit(asyncio.run(main(args)))


if __name__ == "__main__":
    cli()
