"""A fault run's and the matrix's report, in Markdown."""

from __future__ import annotations

import json
import time
from typing import Any

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
