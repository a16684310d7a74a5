"""One fault run: the stack, the load and the faults, the drain, the verification and its verdict."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import verify
from bench.chaos.drain import drain
from bench.chaos.driver import ChaosDriver, ChaosOutcome
from bench.chaos.faults import Injector, plan_faults
from bench.chaos.kinds import BROKER_FAULTS, DOWN_KINDS, FAULTS, log, log_to
from bench.chaos.report import render_run
from bench.chaos.tally import fault_tally
from bench.load import Plan, Tokens, publish_orders
from bench.stack import MONGO_JAR, REPO, SERVICES, Stack, StackConfig, pick_port_base


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
    log_to(out / "chaos.log")
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
        from bench.steps import wait_for_orders

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
        tally = await fault_tally(
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
            from bench.steps import cleanup

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
