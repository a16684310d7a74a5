"""The lifecycle benchmark: N returns through create → authorize → ship → receive → refund → emails.

    scripts/bench --returns 2000 --concurrency 16 [--profile] [--payment ledger|stripe] [--keep]
    scripts/bench --rate 10 --duration 300          # open loop: 10 new returns a second for 5 minutes
    scripts/bench --compare A/result.json B/result.json   # flatness of two closed-loop runs

Starts an isolated stack (own MongoDB-wire server, ports, databases, exchanges, queue prefix, JWT
secret, SMTP sink), measures the machine's ceilings, runs the load, waits for every effect, checks
exactly-once, prints the tables and issue 13's targets (bench/targets.py) and writes the JSON result.
The exit status says whether the exactly-once checks passed, not the targets. See bench/README.md.

This module is the command line; the run is bench/runner.py, with the steps the fault runs share in
bench/steps.py and the figures' arithmetic in bench/figures.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from bench import targets
from bench.runner import BenchRun
from bench.stack import MONGO_JVM


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


async def main(args: argparse.Namespace) -> int:
    if args.compare:
        text, ok = targets.compare_files(*args.compare)
        print(text)
        return 0 if ok else 1
    return await BenchRun(args).run()


def cli(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:
        sys.exit(asyncio.run(main(args)))
    sys.exit(uvloop.run(main(args)))


if __name__ == "__main__":
    cli()
