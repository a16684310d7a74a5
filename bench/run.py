"""The lifecycle benchmark: N returns through create → authorize → ship → receive → refund → emails.

    scripts/bench --returns 2000 --concurrency 16 [--profile] [--payment ledger|stripe] [--keep]
    scripts/bench --rate 10 --duration 300          # open loop: 10 new returns a second for 5 minutes
    scripts/bench --compare A/result.json B/result.json   # flatness of two closed-loop runs

Starts an isolated stack (own MongoDB-wire server, ports, databases, exchanges, queue prefix, JWT
secret, SMTP sink), measures the machine's ceilings, runs the load, waits for every effect, checks
exactly-once, prints the tables and issue 13's targets (bench/targets.py) and writes the JSON result.
The exit status says whether the exactly-once checks passed, not the targets. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from bench import targets, verify
from bench.ceilings import amqp_ceiling, mongo_ceiling
from bench.load import EXPECTED_TEMPLATES, Driver, Latencies, Outcome, Plan, Tokens, publish_orders
from bench.profile import JavaSampler, Profiler
from bench.report import render, summary_ms
from bench.speed import probe_ms
from bench.stack import MONGO_JAR, MONGO_JVM, REPO, SERVICES, Stack, StackConfig, describe, pick_port_base
from bench.usage import UsageSampler, gc_pauses


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    p.add_argument("--returns", "-n", type=int, default=100, help="lifecycles to run (default 100)")
    p.add_argument("--concurrency", "-c", type=int, default=16, help="lifecycles in flight at once (default 16)")
    p.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="closed loop: first run this many lifecycles to the end (refunds, emails) and start measuring "
        "only then, so start-up costs (the store's JIT compiler above all) are not spread over the measured "
        "ones; they are checked like the others (default 0)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open loop: start this many lifecycles per second (with --duration), whatever the answers take; "
        "N = rate x duration, --returns and --concurrency are ignored",
    )
    p.add_argument("--duration", type=float, default=None, help="open loop: seconds to keep starting lifecycles")
    p.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("A.json", "B.json"),
        help="print the flatness target of two result.json files (closed loop, e.g. N=500 and N=5000) and exit",
    )
    p.add_argument("--sellers", type=int, default=10, help="sellers the returns are spread over (default 10)")
    p.add_argument(
        "--payment",
        choices=["ledger", "stripe"],
        default="ledger",
        help="gateway of the orders: ledger (in the refunds db) or stripe (stripe-mock)",
    )
    p.add_argument(
        "--port-base",
        type=int,
        default=None,
        help="services on base+1..+5, SMTP sink on base+25, own MongoDB-wire on base+17 "
        "(default: the first free block from 28000 on, in steps of 100)",
    )
    p.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    p.add_argument(
        "--own-broker",
        action="store_true",
        help="start a RabbitMQ node of the bench's own on --port-base+72 instead of using --amqp-url",
    )
    p.add_argument(
        "--mongodb-url", default=None, help="use this MongoDB-wire server instead of starting a fresh one for the run"
    )
    p.add_argument(
        "--mongo-backend",
        choices=["journal", "h2", "memory"],
        default="journal",
        help="backend of the bench's own mongo-java-server (journal = what scripts/infra-up runs)",
    )
    p.add_argument(
        "--mongo-jar",
        type=Path,
        default=None,
        help="launcher jar of the bench's own server (default: deploy/local/mongo-wire/target/mongo-wire.jar)",
    )
    p.add_argument(
        "--mongo-jvm",
        default=MONGO_JVM,
        help=f"JVM options of the bench's own server (default: {MONGO_JVM!r}); its GC pauses are in logs/mongo-gc.log",
    )
    p.add_argument(
        "--mongo-java",
        default="java",
        help="the java executable that runs the bench's own server (default: java on PATH)",
    )
    p.add_argument(
        "--services-tree",
        type=Path,
        default=None,
        help="run the services from this copy of the repo (to measure a proposed change); "
        "default: this checkout, through scripts/run-services",
    )
    p.add_argument("--stripe-api-base", default=os.environ.get("STRIPE_API_BASE", "http://127.0.0.1:12111"))
    p.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the services (default INFO, as deployed)")
    p.add_argument(
        "--drain-timeout", type=float, default=7200, help="at most this many seconds for every effect after the load"
    )
    p.add_argument(
        "--quiet-timeout",
        type=float,
        default=300,
        help="give up waiting for the effects after this many seconds without a new refund or email (default 300)",
    )
    p.add_argument("--skip-ceilings", action="store_true", help="do not measure the ceilings (development only)")
    p.add_argument("--ceiling-messages", type=int, default=20_000)
    p.add_argument("--ceiling-operations", type=int, default=5_000)
    p.add_argument("--profile", action="store_true", help="sample every service with py-spy during the load")
    p.add_argument(
        "--no-mongo-ops",
        action="store_true",
        help="do not count the services' MongoDB commands (bench/inject/sitecustomize.py)",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the services (repeatable), e.g. --env PREFETCH=64",
    )
    p.add_argument("--out", type=Path, default=None, help="result directory (default .local/bench/<run id>)")
    p.add_argument("--keep", action="store_true", help="leave the stack's data (databases, queues) behind")
    args = p.parse_args(argv)
    if (args.rate is None) != (args.duration is None):
        p.error("--rate and --duration go together")
    if args.rate is not None:
        if args.rate <= 0 or args.duration <= 0:
            p.error("--rate and --duration must be positive")
        args.returns = round(args.rate * args.duration)
    if args.returns <= 0:
        p.error("nothing to run: N must be at least 1")
    return args


LATE_MS = 50.0  # open loop: a lifecycle that starts later than this after its scheduled time is late


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "services", "shared"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        return head + (" + uncommitted changes in services/shared" if dirty else "")
    except OSError:
        return "unknown"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def read_status(observer_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((observer_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {"counts": {}}


async def warm_up(driver: Driver, plans: list[Plan], observer_dir: Path, args: argparse.Namespace) -> list[Outcome]:
    """Run `plans` through their whole life (last refund and email in) before the measured phase,
    then forget their HTTP latencies; their outcomes are checked with the measured ones."""
    began = time.perf_counter()
    outcomes = await driver.run(plans, lambda done: None)
    done = [o for o in outcomes if o.error is None]
    if failed := [o for o in outcomes if o.error is not None]:
        raise RuntimeError(f"warm-up: {len(failed)} lifecycles failed, e.g. {failed[0].error}")
    want = len(done) * len(EXPECTED_TEMPLATES)
    deadline = time.monotonic() + args.drain_timeout
    while True:
        counts = read_status(observer_dir)["counts"]
        if counts.get("return.refunded", 0) >= len(done) and counts.get("mails", 0) >= want:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"warm-up: effects not in after {args.drain_timeout:g} s: {counts}")
        await asyncio.sleep(0.5)
    driver.latencies = Latencies()
    log(f"warm-up: {len(done)} lifecycles to their last refund and email in {time.perf_counter() - began:.1f} s")
    return done


async def wait_for_orders(config: StackConfig, stack: Stack, stall: float = 120) -> str:
    """Until the three consumers of order.delivered have taken in every order: nothing ready in their
    queues twice in a row, and then nothing unacknowledged either (the broker's count of ready plus
    delivered-but-unacknowledged messages; a passive declare sees only the ready ones, and with
    prefetch a service may still hold hundreds), so the measured phase does not start while the
    services are still busy with the intake. Gives up only when the backlog has not shrunk for
    `stall` s (N=5000 takes minutes on a slow store). Returns how the end was established."""
    began = deadline = time.monotonic()
    deadline += stall
    quiet = 0
    least: int | None = None
    drained: float | None = None  # when nothing was ready any more
    mains = {config.queues(s).main for s in SERVICES}
    while time.monotonic() < deadline:
        depths = await verify.queue_depths(config)
        missing = sorted(name for name in mains if depths.get(name) is None)
        if missing:
            raise RuntimeError(
                f"the services' queues {missing} do not exist: is the bench looking for the names shared.bus declares?"
            )
        ready = sum(depths[name] or 0 for name in mains)
        quiet = quiet + 1 if ready == 0 else 0
        if quiet >= 2:
            drained = drained or time.monotonic()
            unsettled = await asyncio.to_thread(stack.unsettled, mains)
            if unsettled is None:
                return "no message ready (the broker cannot tell unacknowledged ones: no management API)"
            ready = sum(unsettled.values())
            if ready == 0:
                return f"none ready after {drained - began:.1f} s, every delivery acknowledged"
        if least is None or ready < least:
            least, deadline = ready, time.monotonic() + stall
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the services stopped taking in the delivered orders ({least} still unsettled for {stall} s)")


def subscriber_counts(tree: Path | None = None) -> Counter[str]:
    """How many services consume each event type, read from their SUBSCRIPTIONS lists in the tree the
    services run from (a subprocess there: with --services-tree its code, not this checkout's, decides)."""
    code = (
        "import importlib, json, collections\n"
        "c = collections.Counter()\n"
        f"for s in {list(SERVICES)!r}:\n"
        "    c.update(x.event_type for x in importlib.import_module(f'services.{s}.handlers').SUBSCRIPTIONS)\n"
        "print(json.dumps(c))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tree or REPO, capture_output=True, text=True, check=True)
    return Counter(json.loads(done.stdout))


async def main(args: argparse.Namespace) -> int:
    if args.compare:
        text, ok = targets.compare_files(*args.compare)
        print(text)
        return 0 if ok else 1
    open_loop = args.rate is not None
    run_id = time.strftime("%m%d%H%M") + secrets.token_hex(2)
    out = args.out or REPO / ".local" / "bench" / run_id
    out.mkdir(parents=True, exist_ok=True)
    extra_env = dict(item.split("=", 1) for item in args.env)
    config = StackConfig(
        run_id=run_id,
        out=out,
        port_base=args.port_base if args.port_base is not None else pick_port_base(28000, own_broker=args.own_broker),
        amqp_url=args.amqp_url,
        mongodb_url=args.mongodb_url,
        mongo_backend=args.mongo_backend,
        payment=args.payment,
        stripe_api_base=args.stripe_api_base,
        log_level=args.log_level,
        extra_env=extra_env,
        count_mongo_ops=not args.no_mongo_ops,
        mongo_jar=args.mongo_jar or MONGO_JAR,
        mongo_jvm=args.mongo_jvm.split(),
        mongo_java=args.mongo_java,
        services_tree=args.services_tree,
        own_broker=args.own_broker,
    )
    stack = Stack(config)
    shape = f"open loop {args.rate:g}/s for {args.duration:g} s" if open_loop else f"C={args.concurrency}"
    log(f"run {run_id}: N={args.returns} {shape}, ports from {config.port_base}, output in {out}")
    speed = probe_ms()  # before anything of the run starts (bench/speed.py)
    log(f"machine speed probe: {speed} CPU ms (a fixed Python workload; lower is faster)")
    result: dict[str, Any] = {}
    try:
        stack.start_mongo()
        stack.find_broker()
        which = f"own, {args.mongo_backend}" if args.mongodb_url is None else "given"
        log(f"MongoDB-wire {stack.mongodb_url} ({which})")

        ceilings: dict[str, Any] = {}
        if not args.skip_ceilings:
            log("ceilings: bare aio-pika publish/consume, bare motor insert/find/update")
            ceilings["amqp"] = await amqp_ceiling(
                config.amqp_url, f"{config.queue_prefix}ceiling", messages=args.ceiling_messages
            )
            ceilings["mongo"] = await mongo_ceiling(
                stack.mongodb_url, f"{config.db_prefix}scratch", operations=args.ceiling_operations
            )
            log(f"ceilings: {ceilings}")

        observer_dir = stack.start_observer()
        log("starting the five services (scripts/run-services)")
        stack.start_services()
        stack.processes["bench (load generator)"] = psutil.Process()
        log(f"up: {', '.join(f'{s} :{config.port(s)}' for s in SERVICES)}")

        tokens = Tokens(config.jwt_secret)
        driver = Driver({s: config.base_url(s) for s in SERVICES}, tokens, None if open_loop else args.concurrency)
        warm = 0 if open_loop else args.warmup
        every_plan = [Plan(i, run_id, args.sellers, args.payment) for i in range(warm + args.returns)]
        warm_plans, plans = every_plan[:warm], every_plan[warm:]
        await driver.put_policies(run_id, args.sellers)
        began_orders = time.perf_counter()
        publish_s = await publish_orders(config.amqp_url, config.orders_exchange, every_plan)
        intake = await wait_for_orders(config, stack)
        orders_s = time.perf_counter() - began_orders
        log(
            f"{len(every_plan)} orders delivered (published in {publish_s:.1f} s, taken in by all after "
            f"{orders_s:.1f} s: {intake})"
        )

        warm_done = await warm_up(driver, warm_plans, observer_dir, args) if warm_plans else []

        # ---- the measured phase ----
        sampler = UsageSampler(dict(stack.processes))
        profiler = Profiler({s: stack.processes[s].pid for s in SERVICES}, out / "profile") if args.profile else None
        java = None
        if profiler:
            profiler.start()
            mongo_proc = stack.processes.get("mongo") or stack.processes.get("mongo (shared)")
            if mongo_proc is not None and "java" in mongo_proc.name():
                java = JavaSampler(mongo_proc.pid, out / "profile")
                java.start()
        period_from = datetime.now(UTC) - timedelta(minutes=5)
        await asyncio.sleep(2.5)  # a fresh tally of MongoDB commands (dumped every 2 s) before we start
        ops_before = stack.mongo_ops()
        sampler.start()
        t0 = time.time()
        last_report = [0.0]

        def progress(done: int) -> None:
            if time.monotonic() - last_report[0] > 10 or done == len(plans):
                last_report[0] = time.monotonic()
                counts = read_status(observer_dir)["counts"]
                log(
                    f"{done}/{len(plans)} lifecycles through receive; refunded {counts.get('return.refunded', 0)}, "
                    f"emails {counts.get('mails', 0)}"
                )

        if open_loop:
            outcomes = await driver.run_open(plans, args.rate, progress)
        else:
            outcomes = await driver.run(plans, progress)
        t_http = time.time()
        done = [o for o in outcomes if o.error is None]
        failed = [o for o in outcomes if o.error is not None]
        if failed:
            log(f"{len(failed)} lifecycles failed on the client, e.g. {failed[0].error}")
        checked = warm_done + done  # every lifecycle of the run, warm-up included, is checked
        want_mails = len(checked) * len(EXPECTED_TEMPLATES)
        deadline = time.monotonic() + args.drain_timeout
        metrics_at = None
        tokens_metrics = tokens("agent", "bench", "metrics")
        seen, quiet_until = None, time.monotonic() + args.quiet_timeout
        while time.monotonic() < deadline:
            status = read_status(observer_dir)
            counts = status["counts"]
            if counts.get("return.refunded", 0) >= len(checked) and counts.get("mails", 0) >= want_mails:
                break
            now_seen = (counts.get("return.refunded", 0), counts.get("mails", 0))
            if now_seen != seen:
                seen, quiet_until = now_seen, time.monotonic() + args.quiet_timeout
            elif time.monotonic() > quiet_until:
                log(f"no new refund or email for {args.quiet_timeout:g} s: giving up the drain (the checks will say)")
                deadline = time.monotonic()  # the metrics wait below is skipped too
                break
            await asyncio.sleep(0.5)
            if time.monotonic() - last_report[0] > 10:
                last_report[0] = time.monotonic()
                log(
                    f"draining: refunded {counts.get('return.refunded', 0)}/{len(checked)}, "
                    f"emails {counts.get('mails', 0)}/{want_mails}"
                )
        status = read_status(observer_dir)
        t_effects = max(status.get("last_mail_t") or t0, status.get("last_event_t") or t0)
        # Metrics: poll the overview until it counts every refund.
        while time.monotonic() < deadline:
            response = await driver.call(
                "metrics",
                "GET",
                "/v1/metrics/overview",
                "metrics overview",
                headers=tokens_metrics,
                record=False,
                params={"from": period_from.isoformat(), "to": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()},
            )
            if (
                response.status_code == 200
                and response.json()["counts"]["refunds"] >= len(checked)
                and response.json()["counts"]["requests"] >= len(checked)
            ):
                metrics_at = time.time()
                break
            await asyncio.sleep(1.0)
        sampler.stop()
        if profiler:
            profiler.stop()
        if java:
            java.stop()
        await asyncio.sleep(2.5)
        ops_after = stack.mongo_ops()
        mongo_ops = ops_delta(ops_before, ops_after)
        log("load done; settling 3 s for late duplicates, then checking")
        await asyncio.sleep(3)

        # ---- checks ----
        checks, refund_to_return = await verify.refunds_check(config, tokens, checked, args.sellers, stack.mongodb_url)
        events = verify.read_jsonl(observer_dir / "events.jsonl")
        mails = verify.read_jsonl(observer_dir / "mails.jsonl")
        event_checks, event_stats = verify.events_check(events, checked, refund_to_return)
        checks += event_checks
        mail_checks, joined_mails = await verify.emails_check(config, tokens, mails, checked)
        joined_mails = [m for m in joined_mails if m["t"] >= t0]  # the figures: measured lifecycles' emails
        checks += mail_checks
        figures = await verify.metrics_figures(
            config, tokens, args.sellers, period_from, datetime.now(UTC) + timedelta(minutes=5)
        )
        checks += verify.metrics_check(figures, checked)
        depths = await verify.queue_depths(config)
        checks += verify.dead_letter_check(depths)
        findings = verify.log_findings(stack.logs)
        checks.append(verify.log_check(findings))
        checks.append(verify.completion_check(args.returns, len(done), failed[0].error if failed else None))

        # ---- figures ----
        first_refunded: dict[str, float] = {}
        event_time: dict[str, float] = {}
        for e in events:
            if e.get("time") is not None:
                event_time.setdefault(e["id"], e["time"])
            if e["type"] == "return.refunded":
                first_refunded.setdefault(e["subject"], e["t"])
        to_refund = [first_refunded[o.return_id] - o.receive_started for o in done if o.return_id in first_refunded]
        after_ok = [first_refunded[o.return_id] - o.receive_done for o in done if o.return_id in first_refunded]
        email_lat = [m["t"] - event_time[m["event_id"]] for m in joined_mails if m.get("event_id") in event_time]
        by_template: dict[str, list[float]] = defaultdict(list)
        for m in joined_mails:
            if m.get("event_id") in event_time:
                by_template[m["template"]].append(m["t"] - event_time[m["event_id"]])
        http = {label: summary_ms(values) for label, values in driver.latencies.by_endpoint.items()}
        n_done = len(done)
        usage = sampler.result(n_done)
        late = [o.late_s for o in outcomes if o.late_s is not None]
        schedule = {}
        if open_loop:
            schedule = {
                "started": len(late),
                "late_threshold_ms": LATE_MS,
                "late": sum(1 for v in late if 1000 * v > LATE_MS),
                "max_late_ms": round(1000 * max(late), 1) if late else None,
                "p99_late_ms": summary_ms(late).get("p99_ms"),
                # The rate the lifecycles actually started at, over the whole run (lateness included).
                "achieved_rate": round((len(late) - 1) / ((len(late) - 1) / args.rate + late[-1] - late[0]), 2)
                if len(late) > 1
                else None,
            }
        wall = t_effects - t0
        subs = subscriber_counts(args.services_tree)
        distinct_by_type = event_stats["by_type"]
        published = sum(distinct_by_type.values()) + len(mails)  # + one notification.sent per email
        delivered = sum(n * subs.get(t, 0) for t, n in distinct_by_type.items()) + len(mails) * subs.get(
            "notification.sent", 0
        )
        ratios = []
        ops_total = sum(sum(o["counts"].values()) for o in mongo_ops.values())
        if ceilings:
            ratios = [
                {
                    "what": "events published by the services (confirmed)",
                    "achieved": round(published / wall),
                    "ceiling": ceilings["amqp"]["publish_confirmed_per_s"],
                },
                {
                    "what": "events consumed and acked by the services",
                    "achieved": round(delivered / wall),
                    "ceiling": ceilings["amqp"]["consume_ack_per_s"],
                },
            ]
            if ops_total:
                ratios.append(
                    {
                        "what": "MongoDB commands by the services (vs bare find_one by _id)",
                        "achieved": round(ops_total / wall),
                        "ceiling": ceilings["mongo"]["find_one_per_s"],
                    }
                )
            for r in ratios:
                r["ratio_pct"] = round(100 * r["achieved"] / r["ceiling"], 2) if r["ceiling"] else None
        result = {
            "run": {
                "run_id": run_id,
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "mode": "open" if open_loop else "closed",
                "returns": args.returns,
                "completed": n_done,
                "concurrency": None if open_loop else args.concurrency,
                "rate": args.rate,
                "duration": args.duration,
                "sellers": args.sellers,
                "payment": args.payment,
                "mongo": stack.mongodb_url
                + (f" (own mongo-java-server, {args.mongo_backend})" if args.mongodb_url is None else ""),
                "amqp": config.amqp_url,
                "log_level": args.log_level,
                "profiled": args.profile,
                "mongo_jar": str(config.mongo_jar),
                "mongo_jvm": args.mongo_jvm,
                "warmup": 0 if args.rate is not None else args.warmup,
                "mongo_java": args.mongo_java,
                "services_tree": str(args.services_tree or REPO),
                "extra_env": extra_env,
                "command": " ".join(sys.argv),
                "revision": git_revision(),
                "machine": {
                    "cpus": psutil.cpu_count(),
                    "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                    "python": platform.python_version(),
                    "kernel": platform.release(),
                    "speed_probe_ms": speed,
                },
                "processes": describe(stack.processes),
            },
            "throughput": {
                "lifecycles_per_s": round(n_done / wall, 2),
                "end_to_end_s": round(wall, 1),
                "http_phase_s": round(t_http - t0, 1),
                "http_phase_lifecycles_per_s": round(n_done / (t_http - t0), 2),
                "metrics_caught_up_s": round(metrics_at - t0, 1) if metrics_at else None,
                "orders_per_s": round(len(plans) / orders_s, 1),
                "http_requests_per_s": round(
                    sum(len(v) for v in driver.latencies.by_endpoint.values()) / (t_http - t0), 1
                ),
                "events_published": published,
                "event_deliveries_to_services": delivered,
                "create_retries_waiting_for_order": sum(o.retries for o in outcomes),
            },
            "latency": {
                "http": http,
                "async": {
                    "received -> refunded (from the receive call)": summary_ms(to_refund),
                    "received -> refunded (from its 200)": summary_ms(after_ok),
                    "event -> email (SMTP receive)": summary_ms(email_lat),
                },
                "email_by_template": {t: summary_ms(v) for t, v in sorted(by_template.items())},
            },
            "schedule": schedule,
            "http_statuses": {k: dict(v) for k, v in driver.latencies.statuses.items()},
            "usage": usage,
            "ceilings": ceilings,
            "ratios": ratios,
            "mongo_commands": mongo_ops_summary(mongo_ops, n_done, wall),
            "garbage_collector": gc_summary(ops_before, ops_after, n_done, usage),
            "events": event_stats,
            "queue_depths": depths,
            "log_findings": findings,
            "metrics_overview_counts": figures["overview"].get("counts"),
            "checks": [c.as_dict() for c in checks],
            "ok": all(c.ok for c in checks) and not failed,
            "lifecycles_failed": len(failed),
            "failures": [{"index": o.plan.index, "error": o.error} for o in failed[:20]],
        }
        result["targets"] = [t.as_dict() for t in targets.run_targets(result)]
        gc = gc_pauses(config.out / "logs" / "mongo-gc.log", t0, time.time())
        if gc is not None:
            result["mongo_gc"] = gc
        if profiler:
            result["profile"] = profiler.summaries()
        if java:
            result["mongo_server_profile"] = java.summary()
        await driver.close()
        (out / "result.json").write_text(json.dumps(result, indent=1, default=str))
        print(render(result))
        print(targets.render(targets.run_targets(result), f"Issue 13 targets ({targets.setting(result)})"))
        if gc is not None:
            log(
                f"MongoDB-wire GC pauses over the measured phase (logs/mongo-gc.log): {gc['pauses']}, "
                f"{gc['total_ms']} ms in all, longest {gc['longest_ms']} ms, {gc['over_100_ms']} over 100 ms, "
                f"{gc['full']} full ({gc['full_ms']} ms)"
            )
        log(f"result: {out / 'result.json'}")
        return 0 if result["ok"] else 1
    finally:
        stack.stop(keep_data=args.keep)
        if not args.keep:
            await cleanup(config, stack.mongodb_url, own_mongo=args.mongodb_url is None)
        stack.stop_broker(keep_data=args.keep)


def ops_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    delta = {}
    for service, now in after.items():
        then = before.get(service, {"counts": {}, "micros": {}})
        delta[service] = {
            kind: {k: v - then[kind].get(k, 0) for k, v in now[kind].items() if v - then[kind].get(k, 0)}
            for kind in ("counts", "micros")
        }
    return delta


def gc_summary(before: dict[str, Any], after: dict[str, Any], lifecycles: int, usage: dict[str, Any]) -> dict[str, Any]:
    """Per service: the cyclic garbage collector over the measured phase (bench/inject): collections
    per generation, their CPU, and that CPU per lifecycle and as a share of the service's CPU."""
    out: dict[str, Any] = {}
    for service, now in after.items():
        if "gc" not in now:  # a tally from an older injector
            continue
        then = before.get(service, {}).get("gc", {"collections": [0, 0, 0], "micros": [0, 0, 0]})
        collections = [a - b for a, b in zip(now["gc"]["collections"], then["collections"], strict=True)]
        cpu_s = sum(now["gc"]["micros"]) / 1e6 - sum(then["micros"]) / 1e6
        service_cpu = usage["processes"].get(service, {}).get("cpu_s")
        out[service] = {
            "collections": collections,
            "cpu_s": round(cpu_s, 2),
            "cpu_ms_per_lifecycle": round(1000 * cpu_s / lifecycles, 2) if lifecycles else None,
            "pct_of_service_cpu": round(100 * cpu_s / service_cpu, 1) if service_cpu else None,
        }
    return out


def mongo_ops_summary(ops: dict[str, dict[str, Any]], lifecycles: int, wall: float) -> dict[str, Any]:
    """Per service: commands per lifecycle, per second, mean round trip, and the heaviest kinds."""
    out: dict[str, Any] = {}
    for service, data in ops.items():
        counts, micros = data["counts"], data["micros"]
        total = sum(counts.values())
        out[service] = {
            "commands": total,
            "per_lifecycle": round(total / lifecycles, 1) if lifecycles else None,
            "per_s": round(total / wall, 1) if wall else None,
            "round_trip_s_total": round(sum(micros.values()) / 1e6, 1),
            "by_kind": [
                {
                    "command": k,
                    "n": n,
                    "per_lifecycle": round(n / lifecycles, 2) if lifecycles else None,
                    "mean_ms": round(micros.get(k, 0) / n / 1000, 2),
                }
                for k, n in sorted(counts.items(), key=lambda kv: -micros.get(kv[0], 0))
            ],
        }
    return out


async def cleanup(config: StackConfig, mongodb_url: str, *, own_mongo: bool) -> None:
    """Delete the run's queues (every service's inbox, retry and dead queues, the witness's) and
    exchanges, and its databases on a shared server. Whatever cannot be deleted is said."""
    import aio_pika

    names = [name for service in SERVICES for name in config.queues(service).all] + [config.witness_queue]
    left: list[str] = []
    try:
        connection = await aio_pika.connect_robust(config.amqp_url)
        async with connection:
            for name in names:
                async with connection.channel() as channel:  # a failed call closes its channel
                    try:
                        await channel.queue_delete(name)
                    except aio_pika.exceptions.ChannelClosed as exc:
                        if "NOT_FOUND" not in str(exc):
                            left.append(f"{name}: {exc}")
            for name in (config.exchange, config.orders_exchange):
                async with connection.channel() as channel:
                    try:
                        await channel.exchange_delete(name)
                    except aio_pika.exceptions.ChannelClosed as exc:
                        if "NOT_FOUND" not in str(exc):
                            left.append(f"{name}: {exc}")
    except Exception as exc:  # noqa: BLE001 - cleanup is best effort, but says what it left
        left.append(f"could not reach the broker: {exc}")
    if left:
        log(f"cleanup left behind: {left}")
    if not own_mongo:
        from motor.motor_asyncio import AsyncIOMotorClient

        client = AsyncIOMotorClient(mongodb_url)
        try:
            for service in SERVICES:
                await client.drop_database(config.database(service))
        finally:
            client.close()


def cli(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:
        sys.exit(asyncio.run(main(args)))
    sys.exit(uvloop.run(main(args)))


if __name__ == "__main__":
    cli()
