"""The figures of a bench run computed from what it recorded: latencies, the open loop's schedule,
event traffic against the machine's ceilings, MongoDB commands and the services' garbage collector."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench.load import Outcome
from bench.report import summary_ms

LATE_MS = 50.0  # open loop: a lifecycle that starts later than this after its scheduled time is late


def latency_figures(
    events: list[dict[str, Any]], joined_mails: list[dict[str, Any]], done: list[Outcome]
) -> dict[str, Any]:
    """received -> refunded (from the receive call and from its 200) and event -> email, per lifecycle
    and per email template, from the observer's records (its receive times `t`)."""
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
    return {
        "async": {
            "received -> refunded (from the receive call)": summary_ms(to_refund),
            "received -> refunded (from its 200)": summary_ms(after_ok),
            "event -> email (SMTP receive)": summary_ms(email_lat),
        },
        "email_by_template": {t: summary_ms(v) for t, v in sorted(by_template.items())},
    }


def schedule_figures(outcomes: list[Outcome], rate: float) -> dict[str, Any]:
    """The open loop's punctuality: how late the lifecycles started against their schedule."""
    late = [o.late_s for o in outcomes if o.late_s is not None]
    return {
        "started": len(late),
        "late_threshold_ms": LATE_MS,
        "late": sum(1 for v in late if 1000 * v > LATE_MS),
        "max_late_ms": round(1000 * max(late), 1) if late else None,
        "p99_late_ms": summary_ms(late).get("p99_ms"),
        # The rate the lifecycles actually started at, over the whole run (lateness included).
        "achieved_rate": round((len(late) - 1) / ((len(late) - 1) / rate + late[-1] - late[0]), 2)
        if len(late) > 1
        else None,
    }


def traffic(by_type: dict[str, int], emails: int, subscribers: dict[str, int]) -> tuple[int, int]:
    """(events the services published, deliveries to the services) for `by_type` distinct events
    and `emails` emails (one notification.sent each), given each type's number of consuming services."""
    published = sum(by_type.values()) + emails
    delivered = sum(n * subscribers.get(t, 0) for t, n in by_type.items()) + emails * subscribers.get(
        "notification.sent", 0
    )
    return published, delivered


def ceiling_ratios(
    ceilings: dict[str, Any], published: int, delivered: int, commands: int, wall: float
) -> list[dict[str, Any]]:
    """The run's broker and store rates as a share of the bare-client ceilings measured before it."""
    if not ceilings:
        return []
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
    if commands:
        ratios.append(
            {
                "what": "MongoDB commands by the services (vs bare find_one by _id)",
                "achieved": round(commands / wall),
                "ceiling": ceilings["mongo"]["find_one_per_s"],
            }
        )
    for r in ratios:
        r["ratio_pct"] = round(100 * r["achieved"] / r["ceiling"], 2) if r["ceiling"] else None
    return ratios


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
