"""Percentiles and the printed tables."""

from __future__ import annotations

import math
from typing import Any


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary_ms(values_s: list[float]) -> dict[str, Any]:
    values = sorted(values_s)
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": round(1000 * percentile(values, 50), 1),
        "p90_ms": round(1000 * percentile(values, 90), 1),
        "p99_ms": round(1000 * percentile(values, 99), 1),
        "max_ms": round(1000 * values[-1], 1),
        "mean_ms": round(1000 * sum(values) / len(values), 1),
    }


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def latency_rows(named: dict[str, dict[str, Any]]) -> list[list[Any]]:
    return [
        [name, s.get("n"), s.get("p50_ms"), s.get("p90_ms"), s.get("p99_ms"), s.get("max_ms")]
        for name, s in named.items()
    ]


LATENCY_HEADERS = ["", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"]


def render(result: dict[str, Any]) -> str:
    out = []
    run = result["run"]
    t = result["throughput"]
    out.append(
        f"\n=== bench {run['run_id']}  {run['date']}  N={run['returns']} "
        + (f"open loop {run['rate']:g}/s " if run.get("mode") == "open" else f"C={run['concurrency']} ")
        + f"payment={run['payment']} mongo={run['mongo']}"
    )
    out.append(
        f"lifecycles/s (until the last refund and email): {t['lifecycles_per_s']}   "
        f"[HTTP phase {t['http_phase_lifecycles_per_s']}/s over {t['http_phase_s']} s; "
        f"all effects after {t['end_to_end_s']} s; metrics caught up after {t.get('metrics_caught_up_s')} s]"
    )
    out.append(f"orders ingested (order.delivered, 3 consumers): {t['orders_per_s']} orders/s")
    sched = result.get("schedule")
    if sched:
        out.append(
            f"open loop: {run['rate']:g} lifecycles/s for {run['duration']:g} s; started late (> "
            f"{sched['late_threshold_ms']:g} ms) {sched['late']} of {sched['started']}, max {sched['max_late_ms']} ms; "
            f"achieved start rate {sched['achieved_rate']}/s"
        )
    out.append("\nHTTP latency per endpoint (client side)")
    out.append(table(LATENCY_HEADERS, latency_rows(result["latency"]["http"])))
    out.append("\nAsynchronous latencies")
    out.append(table(LATENCY_HEADERS, latency_rows(result["latency"]["async"])))
    if result["latency"].get("email_by_template"):
        out.append("\nevent -> email, per template")
        out.append(table(LATENCY_HEADERS, latency_rows(result["latency"]["email_by_template"])))
    usage = result["usage"]
    out.append(f"\nCPU and memory over the measured phase ({usage['wall_s']} s)")
    out.append(
        table(
            ["process", "CPU s", "CPU %", "CPU ms/lifecycle", "peak RSS MiB"],
            [
                [name, p["cpu_s"], p["cpu_pct"], p["cpu_ms_per_lifecycle"], p["peak_rss_mib"]]
                for name, p in usage["processes"].items()
            ],
        )
    )
    m = usage["machine"]
    out.append(
        f"machine: {m['cores']} cores, busy {m['busy_pct_of_all_cores']} % of all cores; "
        f"{m['other_cpu_s']} CPU s by processes outside the bench (other work on the machine); "
        f"load avg {m['load_avg_1m_at_end']}; speed probe {result['run']['machine'].get('speed_probe_ms')} CPU ms "
        "(bench/speed.py: lower is faster)"
    )
    c = result["ceilings"]
    if c:  # --skip-ceilings: none measured
        out.append("\nCeilings measured in this run, and the run as a ratio of them")
        rows = []
        for item in result["ratios"]:
            rows.append([item["what"], item["achieved"], item["ceiling"], f"{item['ratio_pct']} %"])
        out.append(table(["", "achieved /s", "ceiling /s", "ratio"], rows))
        out.append(
            f"(AMQP: {c['amqp']['messages']} msgs of {c['amqp']['bytes']} B, window {c['amqp']['publish_window']}, "
            f"prefetch {c['amqp']['prefetch']}; "
            f"MongoDB-wire: {c['mongo']['operations']} ops of {c['mongo']['bytes']} B, "
            f"{c['mongo']['concurrency']} at a time: insert_one {c['mongo']['insert_one_per_s']}/s, "
            f"find_one {c['mongo']['find_one_per_s']}/s, update_one {c['mongo']['update_one_per_s']}/s)"
        )
    if result.get("mongo_commands"):
        out.append("\nMongoDB commands issued by the services during the measured phase (pymongo listener)")
        rows = []
        for service, data in result["mongo_commands"].items():
            heavy = ", ".join(f"{k['command']} {k['per_lifecycle']}x {k['mean_ms']} ms" for k in data["by_kind"][:3])
            rows.append([service, data["commands"], data["per_lifecycle"], data["per_s"], heavy])
        out.append(
            table(
                ["service", "commands", "per lifecycle", "per s", "most time: kind, per lifecycle, mean round trip"],
                rows,
            )
        )
    if result.get("garbage_collector"):
        gc_rows = [
            [name, "/".join(map(str, g["collections"])), g["cpu_s"], g["cpu_ms_per_lifecycle"], g["pct_of_service_cpu"]]
            for name, g in result["garbage_collector"].items()
        ]
        out.append("\nCyclic garbage collector during the measured phase (collections: young / middle / full)")
        out.append(
            table(
                ["service", "collections", "CPU s", "CPU ms/lifecycle", "% of the service's CPU"],
                gc_rows,
            )
        )
    out.append("\nExactly-once checks")
    for check in result["checks"]:
        out.append(f"  [{'ok' if check['ok'] else 'FAIL'}] {check['name']}: {check['detail']}")
    out.append(
        f"\n{'ALL CHECKS PASSED' if result['ok'] else 'SOME CHECKS FAILED'}; lifecycles failed on the client: "
        f"{result['lifecycles_failed']}"
    )
    if result.get("profile"):
        out.append("\nProfile (py-spy, samples holding the GIL), top self-time frames per service")
        for service, prof in result["profile"].items():
            out.append(f"  {service}: {prof['samples']} samples")
            for row in prof["self_top"][:8]:
                out.append(f"    {row['pct']:5.1f} %  {row['frame']}")
    if result.get("mongo_server_profile"):
        m = result["mongo_server_profile"]
        out.append(
            f"\nMongoDB-wire server (jstack samples of busy workers: {m['busy_samples']}; "
            f"{m['full_scan_pct']} % inside full collection scans)"
        )
        for row in m["by_operation"][:6]:
            out.append(f"    {row['pct']:5.1f} %  {row['frame']}")
    return "\n".join(out)


def markdown(result: dict[str, Any]) -> str:
    """The figures of a result.json as Markdown tables (for RESULTS.md)."""

    def md(headers: list[str], rows: list[list[Any]]) -> str:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join("" if c is None else str(c) for c in row) + " |" for row in rows]
        return "\n".join(lines)

    out = []
    t, usage = result["throughput"], result["usage"]
    out.append(
        md(
            ["figure", "value"],
            [
                ["lifecycles/s (until the last refund and the last email)", t["lifecycles_per_s"]],
                ["all effects done after", f"{t['end_to_end_s']} s"],
                [
                    "HTTP phase (create → receive for all N)",
                    (
                        f"{t['http_phase_s']} s = {t['http_phase_lifecycles_per_s']} lifecycles/s, "
                        f"{t['http_requests_per_s']} requests/s"
                    ),
                ],
                ["metrics counted every refund after", f"{t.get('metrics_caught_up_s')} s"],
                ["orders taken in (set-up, 3 consumers each)", f"{t['orders_per_s']} orders/s"],
                [
                    "events published / deliveries to services",
                    f"{t['events_published']} / {t['event_deliveries_to_services']}",
                ],
            ],
        )
    )
    out.append("\n**HTTP latency per endpoint (client side)**\n")
    out.append(md(["endpoint", *LATENCY_HEADERS[1:]], latency_rows(result["latency"]["http"])))
    out.append("\n**Asynchronous latencies**\n")
    out.append(md(["", *LATENCY_HEADERS[1:]], latency_rows(result["latency"]["async"])))
    if result["latency"].get("email_by_template"):
        out.append("\n**event → email per template**\n")
        out.append(md(["template", *LATENCY_HEADERS[1:]], latency_rows(result["latency"]["email_by_template"])))
    out.append(f"\n**CPU and memory per process over the measured phase ({usage['wall_s']} s)**\n")
    out.append(
        md(
            ["process", "CPU s", "CPU % of one core", "CPU ms / lifecycle", "peak RSS MiB"],
            [
                [n, p["cpu_s"], p["cpu_pct"], p["cpu_ms_per_lifecycle"], p["peak_rss_mib"]]
                for n, p in usage["processes"].items()
            ],
        )
    )
    m = usage["machine"]
    out.append(
        f"\nMachine: {m['cores']} cores busy {m['busy_pct_of_all_cores']} % of the time; "
        f"{m['other_cpu_s']} CPU s used by processes outside the bench; "
        f"load average {m['load_avg_1m_at_end']} at the end."
    )
    if result.get("ratios"):
        out.append("\n**Ceilings (measured in this run) and ratios**\n")
        out.append(
            md(
                ["", "achieved /s", "ceiling /s", "ratio"],
                [[r["what"], r["achieved"], r["ceiling"], f"{r['ratio_pct']} %"] for r in result["ratios"]],
            )
        )
        c = result["ceilings"]
        out.append(
            f"\nBare loops: aio-pika {c['amqp']['messages']} persistent messages of {c['amqp']['bytes']} B "
            f"on a scratch quorum queue, {c['amqp']['publish_window']} confirms in flight: "
            f"**{c['amqp']['publish_confirmed_per_s']} msg/s published**, "
            f"consume-and-ack (prefetch {c['amqp']['prefetch']}): **{c['amqp']['consume_ack_per_s']} msg/s**. "
            f"motor, {c['mongo']['concurrency']} at a time, {c['mongo']['bytes']} B documents: insert_one "
            f"**{c['mongo']['insert_one_per_s']}/s**, find_one by _id **{c['mongo']['find_one_per_s']}/s**, "
            f"update_one by _id **{c['mongo']['update_one_per_s']}/s**, "
            f"update_one on _id + version over {c['mongo']['documents']} documents "
            f"**{c['mongo']['conditional_update_one_per_s']}/s**."
        )
    if result.get("mongo_commands"):
        out.append("\n**MongoDB commands per lifecycle (pymongo listener in the services)**\n")
        out.append(
            md(
                [
                    "service",
                    "commands",
                    "per lifecycle",
                    "per s",
                    "most round-trip time (kind: per lifecycle, mean ms)",
                ],
                [
                    [
                        s,
                        d["commands"],
                        d["per_lifecycle"],
                        d["per_s"],
                        "; ".join(f"{k['command']}: {k['per_lifecycle']}, {k['mean_ms']}" for k in d["by_kind"][:4]),
                    ]
                    for s, d in result["mongo_commands"].items()
                ],
            )
        )
    out.append("\n**Exactly-once checks**\n")
    out += [f"- {'✅' if c['ok'] else '❌'} {c['name']}: {c['detail']}" for c in result["checks"]]
    return "\n".join(out)


if __name__ == "__main__":
    import json
    import sys

    print(markdown(json.load(open(sys.argv[1]))))
