"""One bench run (`BenchRun`): the stack, the ceilings, the orders and the warm-up, the measured load
and its drain, the exactly-once checks, the figures and the result file."""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from bench import figures, targets, verify
from bench.ceilings import amqp_ceiling, mongo_ceiling
from bench.load import EXPECTED_TEMPLATES, Driver, Outcome, Plan, Tokens, publish_orders
from bench.profile import JavaSampler, Profiler
from bench.report import render, summary_ms
from bench.speed import probe_ms
from bench.stack import MONGO_JAR, REPO, SERVICES, Stack, StackConfig, describe, pick_port_base
from bench.steps import cleanup, git_revision, log, read_status, subscriber_counts, wait_for_orders, warm_up
from bench.usage import UsageSampler, gc_pauses


@dataclass
class Measured:
    """What the measured phase leaves for the checks and the figures (times are `time.time()`)."""

    outcomes: list[Outcome]
    period_from: datetime  # the metrics period asked for covers the run
    t0: float  # the load began
    t_http: float  # the last lifecycle's last call answered
    t_effects: float  # the last refund or email seen by the observer
    metrics_at: float | None  # the metrics overview counted every lifecycle
    ops_before: dict[str, Any]
    ops_after: dict[str, Any]
    warm_done: list[Outcome]

    @property
    def done(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is None]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is not None]

    @property
    def checked(self) -> list[Outcome]:
        """Every lifecycle of the run, warm-up included: all are checked."""
        return self.warm_done + self.done


@dataclass
class Checked:
    """The exactly-once checks, with what they read (the figures use it too)."""

    checks: list[verify.Check]
    events: list[dict[str, Any]]
    mails: list[dict[str, Any]]
    joined_mails: list[dict[str, Any]]  # the measured lifecycles' emails, joined to their events
    event_stats: dict[str, Any]
    metrics: dict[str, Any]  # the metrics service's figures
    depths: dict[str, int | None]
    findings: dict[str, Any]


class BenchRun:
    """One run: the stack, the ceilings, the orders and the warm-up, the measured load and its drain,
    the checks, the figures and the result file."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.open_loop = args.rate is not None
        self.run_id = time.strftime("%m%d%H%M") + secrets.token_hex(2)
        self.out: Path = args.out or REPO / ".local" / "bench" / self.run_id
        self.out.mkdir(parents=True, exist_ok=True)
        self.extra_env = dict(item.split("=", 1) for item in args.env)
        self.config = StackConfig(
            run_id=self.run_id,
            out=self.out,
            port_base=args.port_base
            if args.port_base is not None
            else pick_port_base(28000, own_broker=args.own_broker),
            amqp_url=args.amqp_url,
            mongodb_url=args.mongodb_url,
            mongo_backend=args.mongo_backend,
            payment=args.payment,
            stripe_api_base=args.stripe_api_base,
            log_level=args.log_level,
            extra_env=self.extra_env,
            count_mongo_ops=not args.no_mongo_ops,
            mongo_jar=args.mongo_jar or MONGO_JAR,
            mongo_jvm=args.mongo_jvm.split(),
            mongo_java=args.mongo_java,
            services_tree=args.services_tree,
            own_broker=args.own_broker,
        )
        self.stack = Stack(self.config)
        self.tokens = Tokens(self.config.jwt_secret)
        self.driver = Driver(
            {s: self.config.base_url(s) for s in SERVICES}, self.tokens, None if self.open_loop else args.concurrency
        )
        self.observer_dir = self.out / "observer"  # where stack.start_observer() puts its records
        self.sampler: UsageSampler | None = None
        self.profiler: Profiler | None = None
        self.java: JavaSampler | None = None
        self.last_report = 0.0

    async def run(self) -> int:
        args, config, stack = self.args, self.config, self.stack
        shape = f"open loop {args.rate:g}/s for {args.duration:g} s" if self.open_loop else f"C={args.concurrency}"
        log(f"run {self.run_id}: N={args.returns} {shape}, ports from {config.port_base}, output in {self.out}")
        speed = probe_ms()  # before anything of the run starts (bench/speed.py)
        log(f"machine speed probe: {speed} CPU ms (a fixed Python workload; lower is faster)")
        try:
            stack.start_mongo()
            stack.find_broker()
            which = f"own, {args.mongo_backend}" if args.mongodb_url is None else "given"
            log(f"MongoDB-wire {stack.mongodb_url} ({which})")
            ceilings = await self.ceilings()
            plans, warm_done, orders_s = await self.start()
            measured = await self.measure(plans, warm_done)
            checked = await self.check(measured)
            result = self.result(measured, checked, ceilings, speed, len(plans) / orders_s)
            await self.driver.close()
            self.report(result)
            return 0 if result["ok"] else 1
        finally:
            stack.stop(keep_data=args.keep)
            if not args.keep:
                await cleanup(config, stack.mongodb_url, own_mongo=args.mongodb_url is None)
            stack.stop_broker(keep_data=args.keep)

    async def ceilings(self) -> dict[str, Any]:
        """Bare aio-pika and motor on this machine now (none with --skip-ceilings)."""
        if self.args.skip_ceilings:
            return {}
        log("ceilings: bare aio-pika publish/consume, bare motor insert/find/update")
        ceilings = {
            "amqp": await amqp_ceiling(
                self.config.amqp_url, f"{self.config.queue_prefix}ceiling", messages=self.args.ceiling_messages
            ),
            "mongo": await mongo_ceiling(
                self.stack.mongodb_url, f"{self.config.db_prefix}scratch", operations=self.args.ceiling_operations
            ),
        }
        log(f"ceilings: {ceilings}")
        return ceilings

    async def start(self) -> tuple[list[Plan], list[Outcome], float]:
        """The observer and the services up, every order delivered and taken in, the warm-up done.
        Returns the measured phase's plans, the warm-up's outcomes and how long the orders took (s)."""
        args, config, stack = self.args, self.config, self.stack
        self.observer_dir = stack.start_observer()
        log("starting the five services (scripts/run-services)")
        stack.start_services()
        stack.processes["bench (load generator)"] = psutil.Process()
        log(f"up: {', '.join(f'{s} :{config.port(s)}' for s in SERVICES)}")
        warm = 0 if self.open_loop else args.warmup
        every_plan = [Plan(i, self.run_id, args.sellers, args.payment) for i in range(warm + args.returns)]
        await self.driver.put_policies(self.run_id, args.sellers)
        began_orders = time.perf_counter()
        publish_s = await publish_orders(config.amqp_url, config.orders_exchange, every_plan)
        intake = await wait_for_orders(config, stack)
        orders_s = time.perf_counter() - began_orders
        log(
            f"{len(every_plan)} orders delivered (published in {publish_s:.1f} s, taken in by all after "
            f"{orders_s:.1f} s: {intake})"
        )
        warm_plans, plans = every_plan[:warm], every_plan[warm:]
        warm_done = await warm_up(self.driver, warm_plans, self.observer_dir, args) if warm_plans else []
        return plans, warm_done, orders_s

    async def measure(self, plans: list[Plan], warm_done: list[Outcome]) -> Measured:
        """The measured phase: the load, then until every effect is in (or the drain gives up), with
        the processes' CPU sampled (and profiled with --profile) and the MongoDB commands counted."""
        stack = self.stack
        self.sampler = UsageSampler(dict(stack.processes))
        if self.args.profile:
            self.profiler = Profiler({s: stack.processes[s].pid for s in SERVICES}, self.out / "profile")
            self.profiler.start()
            mongo_proc = stack.processes.get("mongo") or stack.processes.get("mongo (shared)")
            if mongo_proc is not None and "java" in mongo_proc.name():
                self.java = JavaSampler(mongo_proc.pid, self.out / "profile")
                self.java.start()
        period_from = datetime.now(UTC) - timedelta(minutes=5)
        await asyncio.sleep(2.5)  # a fresh tally of MongoDB commands (dumped every 2 s) before we start
        ops_before = stack.mongo_ops()
        self.sampler.start()
        t0 = time.time()

        def progress(done: int) -> None:
            if time.monotonic() - self.last_report > 10 or done == len(plans):
                self.last_report = time.monotonic()
                counts = read_status(self.observer_dir)["counts"]
                log(
                    f"{done}/{len(plans)} lifecycles through receive; refunded {counts.get('return.refunded', 0)}, "
                    f"emails {counts.get('mails', 0)}"
                )

        if self.open_loop:
            outcomes = await self.driver.run_open(plans, self.args.rate, progress)
        else:
            outcomes = await self.driver.run(plans, progress)
        t_http = time.time()
        if failed := [o for o in outcomes if o.error is not None]:
            log(f"{len(failed)} lifecycles failed on the client, e.g. {failed[0].error}")
        checked = len(warm_done) + len(outcomes) - len(failed)  # every lifecycle through, warm-up included
        deadline = await self.drain(checked)
        status = read_status(self.observer_dir)
        t_effects = max(status.get("last_mail_t") or t0, status.get("last_event_t") or t0)
        metrics_at = await self.metrics_caught_up(checked, period_from, deadline)
        self.sampler.stop()
        if self.profiler:
            self.profiler.stop()
        if self.java:
            self.java.stop()
        await asyncio.sleep(2.5)
        ops_after = stack.mongo_ops()
        log("load done; settling 3 s for late duplicates, then checking")
        await asyncio.sleep(3)
        return Measured(outcomes, period_from, t0, t_http, t_effects, metrics_at, ops_before, ops_after, warm_done)

    async def drain(self, lifecycles: int) -> float:
        """Until the observer has every refund and email of `lifecycles`; gives up after --drain-timeout,
        or when nothing new came for --quiet-timeout s. Returns the deadline left for the metrics
        (already passed when the drain gave up for quiet)."""
        args = self.args
        want_mails = lifecycles * len(EXPECTED_TEMPLATES)
        deadline = time.monotonic() + args.drain_timeout
        seen, quiet_until = None, time.monotonic() + args.quiet_timeout
        while time.monotonic() < deadline:
            counts = read_status(self.observer_dir)["counts"]
            if counts.get("return.refunded", 0) >= lifecycles and counts.get("mails", 0) >= want_mails:
                break
            now_seen = (counts.get("return.refunded", 0), counts.get("mails", 0))
            if now_seen != seen:
                seen, quiet_until = now_seen, time.monotonic() + args.quiet_timeout
            elif time.monotonic() > quiet_until:
                log(f"no new refund or email for {args.quiet_timeout:g} s: giving up the drain (the checks will say)")
                return time.monotonic()  # the metrics wait is skipped too
            await asyncio.sleep(0.5)
            if time.monotonic() - self.last_report > 10:
                self.last_report = time.monotonic()
                log(
                    f"draining: refunded {counts.get('return.refunded', 0)}/{lifecycles}, "
                    f"emails {counts.get('mails', 0)}/{want_mails}"
                )
        return deadline

    async def metrics_caught_up(self, lifecycles: int, period_from: datetime, deadline: float) -> float | None:
        """When the metrics overview counted every request and refund (`time.time()`), polled until
        `deadline`; None if it did not."""
        headers = self.tokens("agent", "bench", "metrics")
        while time.monotonic() < deadline:
            response = await self.driver.call(
                "metrics",
                "GET",
                "/v1/metrics/overview",
                "metrics overview",
                headers=headers,
                record=False,
                params={"from": period_from.isoformat(), "to": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()},
            )
            if (
                response.status_code == 200
                and response.json()["counts"]["refunds"] >= lifecycles
                and response.json()["counts"]["requests"] >= lifecycles
            ):
                return time.time()
            await asyncio.sleep(1.0)
        return None

    async def check(self, m: Measured) -> Checked:
        """Exactly once, from outside: refunds and payments, events, emails, metrics, queues, logs."""
        config, tokens, checked = self.config, self.tokens, m.checked
        checks, refund_to_return = await verify.refunds_check(
            config, tokens, checked, self.args.sellers, self.stack.mongodb_url
        )
        events = verify.read_jsonl(self.observer_dir / "events.jsonl")
        mails = verify.read_jsonl(self.observer_dir / "mails.jsonl")
        event_checks, event_stats = verify.events_check(events, checked, refund_to_return)
        checks += event_checks
        mail_checks, joined_mails = await verify.emails_check(config, tokens, mails, checked)
        checks += mail_checks
        metrics = await verify.metrics_figures(
            config, tokens, self.args.sellers, m.period_from, datetime.now(UTC) + timedelta(minutes=5)
        )
        checks += verify.metrics_check(metrics, checked)
        depths = await verify.queue_depths(config)
        checks += verify.dead_letter_check(depths)
        findings = verify.log_findings(self.stack.logs)
        checks.append(verify.log_check(findings))
        failed = m.failed
        checks.append(verify.completion_check(self.args.returns, len(m.done), failed[0].error if failed else None))
        measured_mails = [mail for mail in joined_mails if mail["t"] >= m.t0]  # the figures: measured lifecycles'
        return Checked(checks, events, mails, measured_mails, event_stats, metrics, depths, findings)

    def result(
        self, m: Measured, c: Checked, ceilings: dict[str, Any], speed: float, orders_per_s: float
    ) -> dict[str, Any]:
        """The run's result.json: the run, throughput, latency, usage, commands, checks and targets."""
        args, driver = self.args, self.driver
        done, failed = m.done, m.failed
        n_done = len(done)
        usage = self.sampler.result(n_done) if self.sampler else {}
        wall = m.t_effects - m.t0
        mongo_ops = figures.ops_delta(m.ops_before, m.ops_after)
        published, delivered = figures.traffic(
            c.event_stats["by_type"], len(c.mails), subscriber_counts(args.services_tree)
        )
        commands = sum(sum(o["counts"].values()) for o in mongo_ops.values())
        result: dict[str, Any] = {
            "run": self.run_section(speed, n_done),
            "throughput": {
                "lifecycles_per_s": round(n_done / wall, 2),
                "end_to_end_s": round(wall, 1),
                "http_phase_s": round(m.t_http - m.t0, 1),
                "http_phase_lifecycles_per_s": round(n_done / (m.t_http - m.t0), 2),
                "metrics_caught_up_s": round(m.metrics_at - m.t0, 1) if m.metrics_at else None,
                "orders_per_s": round(orders_per_s, 1),
                "http_requests_per_s": round(
                    sum(len(v) for v in driver.latencies.by_endpoint.values()) / (m.t_http - m.t0), 1
                ),
                "events_published": published,
                "event_deliveries_to_services": delivered,
                "create_retries_waiting_for_order": sum(o.retries for o in m.outcomes),
            },
            "latency": {
                "http": {label: summary_ms(values) for label, values in driver.latencies.by_endpoint.items()},
                **figures.latency_figures(c.events, c.joined_mails, done),
            },
            "schedule": figures.schedule_figures(m.outcomes, args.rate) if self.open_loop else {},
            "http_statuses": {k: dict(v) for k, v in driver.latencies.statuses.items()},
            "usage": usage,
            "ceilings": ceilings,
            "ratios": figures.ceiling_ratios(ceilings, published, delivered, commands, wall),
            "mongo_commands": figures.mongo_ops_summary(mongo_ops, n_done, wall),
            "garbage_collector": figures.gc_summary(m.ops_before, m.ops_after, n_done, usage),
            "events": c.event_stats,
            "queue_depths": c.depths,
            "log_findings": c.findings,
            "metrics_overview_counts": c.metrics["overview"].get("counts"),
            "checks": [check.as_dict() for check in c.checks],
            "ok": all(check.ok for check in c.checks) and not failed,
            "lifecycles_failed": len(failed),
            "failures": [{"index": o.plan.index, "error": o.error} for o in failed[:20]],
        }
        result["targets"] = [t.as_dict() for t in targets.run_targets(result)]
        gc = gc_pauses(self.config.out / "logs" / "mongo-gc.log", m.t0, time.time())
        if gc is not None:
            result["mongo_gc"] = gc
        if self.profiler:
            result["profile"] = self.profiler.summaries()
        if self.java:
            result["mongo_server_profile"] = self.java.summary()
        return result

    def run_section(self, speed: float, completed: int) -> dict[str, Any]:
        """What was run, where and how: the result's `run`."""
        args, config, stack = self.args, self.config, self.stack
        return {
            "run_id": self.run_id,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": "open" if self.open_loop else "closed",
            "returns": args.returns,
            "completed": completed,
            "concurrency": None if self.open_loop else args.concurrency,
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
            "warmup": 0 if self.open_loop else args.warmup,
            "mongo_java": args.mongo_java,
            "services_tree": str(args.services_tree or REPO),
            "extra_env": self.extra_env,
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
        }

    def report(self, result: dict[str, Any]) -> None:
        """result.json written, the tables and the targets printed."""
        (self.out / "result.json").write_text(json.dumps(result, indent=1, default=str))
        print(render(result))
        print(targets.render(targets.run_targets(result), f"Issue 13 targets ({targets.setting(result)})"))
        if gc := result.get("mongo_gc"):
            log(
                f"MongoDB-wire GC pauses over the measured phase (logs/mongo-gc.log): {gc['pauses']}, "
                f"{gc['total_ms']} ms in all, longest {gc['longest_ms']} ms, {gc['over_100_ms']} over 100 ms, "
                f"{gc['full']} full ({gc['full_ms']} ms)"
            )
        log(f"result: {self.out / 'result.json'}")
