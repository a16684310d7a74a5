"""The command line: `scripts/chaos --fault KIND|all ...`."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from pathlib import Path

from bench.chaos.kinds import FAULTS, MATRIX
from bench.chaos.report import MATRIX_HEADER, matrix_row
from bench.chaos.runs import Options, run
from bench.stack import MONGO_JAR, SERVICES


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
