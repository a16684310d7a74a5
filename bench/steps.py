"""Steps of a bench run that the fault runs (bench/chaos/) take too: the log, the observer's status,
the orders' intake, the warm-up, who consumes what, and the clean-up."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import verify
from bench.load import EXPECTED_TEMPLATES, Driver, Latencies, Outcome, Plan
from bench.stack import REPO, SERVICES, Stack, StackConfig
from services.notifications.webhooks.bindings import queue_name as webhooks_queue


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


async def cleanup(config: StackConfig, mongodb_url: str, *, own_mongo: bool) -> None:
    """Delete the run's queues (every service's inbox, retry and dead queues, the notifications
    service's webhooks queue, the witness's) and exchanges, and its databases on a shared server.
    Whatever cannot be deleted is said."""
    import aio_pika

    names = [name for service in SERVICES for name in config.queues(service).all]
    names += [webhooks_queue(config.queues("notifications").base), config.witness_queue]
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
