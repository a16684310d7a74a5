"""Exactly-once, checked at the end: refunds and payments, events, emails, metric counts, dead letters."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx
from motor.motor_asyncio import AsyncIOMotorClient

from bench.load import EXPECTED_EVENTS, EXPECTED_TEMPLATES, Outcome, Tokens, seller_id
from bench.stack import SERVICES, StackConfig


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def list_all(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = dict(params or {}) | {"limit": 200} | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, headers=headers, params=query)
        response.raise_for_status()
        page = response.json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def _sample(items: list[Any], n: int = 5) -> str:
    return ", ".join(str(i) for i in items[:n]) + (" …" if len(items) > n else "")


async def refunds_check(
    config: StackConfig, tokens: Tokens, done: list[Outcome], sellers: int, mongodb_url: str
) -> tuple[list[Check], dict[str, str]]:
    """One issued refund per return with the planned amount; one ledger payment per refund."""
    headers = tokens("agent", "bench", "refunds")
    async with httpx.AsyncClient(base_url=config.base_url("refunds"), timeout=120) as client:
        refunds = []
        for n in range(sellers):
            refunds += await list_all(client, "/v1/refunds", headers, {"seller_id": seller_id(config.run_id, n)})
    by_return: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for refund in refunds:
        by_return[refund.get("return_id")].append(refund)
    planned = {o.return_id: o.plan for o in done}
    missing = [rid for rid in planned if rid not in by_return]
    doubled = [rid for rid, found in by_return.items() if len(found) > 1]
    strangers = [rid for rid in by_return if rid not in planned]
    wrong_amount, not_issued = [], []
    for rid, plan in planned.items():
        for refund in by_return.get(rid, []):
            if refund["status"] != "issued":
                not_issued.append(f"{rid}:{refund['status']}")
            if refund["amount"]["amount"] != plan.expected_refund:
                wrong_amount.append(f"{rid} (kind {plan.kind}): {refund['amount']['amount']} != {plan.expected_refund}")
    checks = [
        Check(
            "refunds: exactly one per return",
            not missing and not doubled and not strangers,
            f"{len(refunds)} refunds for {len(planned)} returns; missing {len(missing)} {_sample(missing)}; "
            f"more than one {len(doubled)} {_sample(doubled)}; unplanned {len(strangers)}",
        ),
        Check(
            "refunds: all issued, amounts as planned",
            not wrong_amount and not not_issued,
            f"not issued {len(not_issued)} {_sample(not_issued)}; "
            f"wrong amount {len(wrong_amount)} {_sample(wrong_amount)}",
        ),
    ]
    refund_to_return = {r["refund_id"]: r.get("return_id") for r in refunds}
    if config.payment == "ledger":
        client = AsyncIOMotorClient(mongodb_url, tz_aware=True)
        try:
            entries = [
                doc
                async for doc in client[config.database("refunds")]["ledger_entries"].find(
                    {}, {"return_id": 1, "amount": 1}
                )
            ]
        finally:
            client.close()
        paid = Counter(e.get("return_id") for e in entries)
        amounts = {e.get("return_id"): e.get("amount") for e in entries}
        twice = [rid for rid, n in paid.items() if n > 1]
        unpaid = [rid for rid in planned if paid.get(rid, 0) == 0]
        off = [rid for rid, plan in planned.items() if rid in amounts and amounts[rid] != plan.expected_refund]
        checks.append(
            Check(
                "payments (ledger gateway): exactly one per return, right amount",
                not twice and not unpaid and not off and len(entries) == len(planned),
                f"{len(entries)} ledger entries; paid twice {len(twice)} {_sample(twice)}; "
                f"unpaid {len(unpaid)}; wrong amount {len(off)} {_sample(off)}",
            )
        )
    else:
        checks.append(Check("payments (stripe-mock)", True, "stripe-mock keeps no state: checked through refunds only"))
    return checks, refund_to_return


def events_check(
    events: list[dict[str, Any]], done: list[Outcome], refund_to_return: dict[str, str]
) -> tuple[list[Check], dict[str, Any]]:
    """Each lifecycle event published once (one event id per return and type); redeliveries counted."""
    deliveries = Counter(e["id"] for e in events)
    unique: dict[str, dict[str, Any]] = {}
    for e in events:
        unique.setdefault(e["id"], e)
    ids_per: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in unique.values():
        subject = e.get("subject")
        if e["type"].startswith("refund."):
            rid = e.get("return_id") or refund_to_return.get(subject, subject)
        else:
            rid = subject
        ids_per[(rid, e["type"])].add(e["id"])
    planned = [o.return_id for o in done]
    problems = []
    for rid in planned:
        for event_type in EXPECTED_EVENTS:
            n = len(ids_per.get((rid, event_type), ()))
            if n != 1:
                problems.append(f"{rid} {event_type} x{n}")
    unexpected = sorted({e["type"] for e in unique.values()} - set(EXPECTED_EVENTS))
    redelivered = sum(n - 1 for n in deliveries.values() if n > 1)
    return [
        Check(
            "events: each lifecycle event published exactly once (by id)",
            not problems and not unexpected,
            f"{len(unique)} distinct events; wrong counts {len(problems)} {_sample(problems)}; "
            f"unexpected types {unexpected}; same id delivered again {redelivered}x",
        )
    ], {
        "distinct": len(unique),
        "delivered": len(events),
        "duplicate_deliveries": redelivered,
        "by_type": dict(Counter(e["type"] for e in unique.values())),
    }


async def emails_check(
    config: StackConfig, tokens: Tokens, mails: list[dict[str, Any]], done: list[Outcome]
) -> tuple[list[Check], list[dict[str, Any]]]:
    """SMTP side: each notification delivered once; per return exactly the expected set of templates."""
    async with httpx.AsyncClient(base_url=config.base_url("notifications"), timeout=300) as client:
        log = await list_all(client, "/v1/notifications", tokens("agent", "bench", "notifications"))
    by_id = {n["notification_id"]: n for n in log}
    per_notification = Counter(m["notification_id"] for m in mails)
    resent = [nid for nid, n in per_notification.items() if n > 1]
    unknown = [nid for nid in per_notification if nid not in by_id]
    received: dict[str, Counter[str]] = defaultdict(Counter)
    for m in mails:
        n = by_id.get(m["notification_id"])
        if n is not None:
            received[n.get("return_id")][n["template"]] += 1
    wrong = []
    for o in done:
        got = received.get(o.return_id, Counter())
        if set(got) != EXPECTED_TEMPLATES or any(v != 1 for v in got.values()):
            extra = {t: v for t, v in got.items() if v != 1 or t not in EXPECTED_TEMPLATES}
            wrong.append(f"{o.return_id}: missing {sorted(EXPECTED_TEMPLATES - set(got))} extra {extra}")
    not_sent = [n["notification_id"] for n in log if n.get("status") != "sent"]
    expected = len(done) * len(EXPECTED_TEMPLATES)
    joined = [
        {**m, **{k: by_id[m["notification_id"]].get(k) for k in ("event_id", "event_type", "template", "return_id")}}
        for m in mails
        if m["notification_id"] in by_id
    ]
    return [
        Check(
            "emails: each (return, template) received exactly once over SMTP",
            not resent and not unknown and not wrong and len(mails) == expected,
            f"{len(mails)} received, {expected} expected ({len(EXPECTED_TEMPLATES)} per return); "
            f"same notification twice {len(resent)}; unknown {len(unknown)}; "
            f"returns off {len(wrong)} {_sample(wrong, 3)}",
        ),
        Check(
            "emails: notification log all sent",
            not not_sent and len(log) == expected,
            f"{len(log)} in the log, not sent {len(not_sent)} {_sample(not_sent)}",
        ),
    ], joined


async def metrics_figures(
    config: StackConfig, tokens: Tokens, sellers: int, since: datetime, until: datetime
) -> dict[str, Any]:
    headers = tokens("agent", "bench", "metrics")
    params = {"from": since.isoformat(), "to": until.isoformat()}
    async with httpx.AsyncClient(base_url=config.base_url("metrics"), timeout=300) as client:
        overview = (await client.get("/v1/metrics/overview", headers=headers, params=params)).json()
        per_seller = {}
        for n in range(sellers):
            sid = seller_id(config.run_id, n)
            per_seller[sid] = (await client.get(f"/v1/metrics/sellers/{sid}", headers=headers, params=params)).json()
    return {"overview": overview, "sellers": per_seller}


COUNTED = ("requests", "authorizations", "shipments", "receipts", "refunds")


def metrics_check(figures: dict[str, Any], done: list[Outcome]) -> list[Check]:
    n = len(done)
    expected_by_seller = Counter(o.plan.seller_id for o in done)
    amount_by_seller = Counter()
    for o in done:
        amount_by_seller[o.plan.seller_id] += o.plan.expected_refund
    counts = figures["overview"].get("counts", {})
    off = [f"overview.{k}={counts.get(k)}" for k in COUNTED if counts.get(k) != n]
    for sid, data in figures["sellers"].items():
        c = data.get("counts", {})
        off += [
            f"{sid}.{k}={c.get(k)}!={expected_by_seller[sid]}" for k in COUNTED if c.get(k) != expected_by_seller[sid]
        ]
        refunded = {m["currency"]: m["amount"] for m in data.get("refunded", [])}
        if refunded.get("USD", 0) != amount_by_seller[sid]:
            off.append(f"{sid}.refunded USD {refunded.get('USD')} != {amount_by_seller[sid]}")
    total = {m["currency"]: m["amount"] for m in figures["overview"].get("refunded", [])}
    if total.get("USD", 0) != sum(amount_by_seller.values()):
        off.append(f"overview.refunded USD {total.get('USD')} != {sum(amount_by_seller.values())}")
    return [
        Check(
            "metrics: counts and refunded amounts == N (overview and per seller)",
            not off,
            f"{len(off)} figures off {_sample(off)}; overview counts "
            + ", ".join(f"{k} {counts.get(k)}" for k in COUNTED),
        )
    ]


async def queue_depths(config: StackConfig) -> dict[str, int | None]:
    """Ready messages in every queue of the bench's services: `<prefix><service>.inbox`, its retry
    queues and `.dead`, named by shared.queues.QueueNames. A queue that does not exist is None, which
    the checks treat as an error: every service declares all of its queues when it starts."""
    names = [name for service in SERVICES for name in config.queues(service).all]
    depths: dict[str, int | None] = {}
    connection = await aio_pika.connect_robust(config.amqp_url)
    try:
        for name in names:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
                depths[name] = queue.declaration_result.message_count
            except aio_pika.exceptions.ChannelNotFoundEntity:  # 404 NOT_FOUND: no such queue
                depths[name] = None
            finally:
                if not channel.is_closed:
                    await channel.close()
    finally:
        await connection.close()
    return depths


def dead_letter_check(depths: dict[str, int | None]) -> list[Check]:
    missing = sorted(k for k, v in depths.items() if v is None)
    dead = {k: v for k, v in depths.items() if k.endswith(".dead") and v}
    waiting = {k: v for k, v in depths.items() if not k.endswith(".dead") and v}
    return [
        Check(
            "every queue of the services exists (inbox, retry, dead)",
            not missing,
            f"missing: {missing}" if missing else f"{len(depths)} queues",
        ),
        Check("no dead-lettered messages", not dead, f"dead queues: {dead or 'all empty'}"),
        Check("no message still waiting (main and retry queues)", not waiting, f"{waiting or 'all empty'}"),
    ]


LOG_PATTERNS = {
    "retried": "handler failed, will retry",
    "parked": "parked in dead-letter queue",
    "left unacked": "message left unacked",
    "outbox publish failed": "outbox publish failed",
    "errors": '"level": "ERROR"',
    "warnings": '"level": "WARNING"',
}


def log_findings(log_dir: Path) -> dict[str, dict[str, int]]:
    """Occurrences of LOG_PATTERNS per service log; a log that is missing or empty is a finding of
    its own (`no log`), never a clean log."""
    found: dict[str, dict[str, int]] = {}
    for service in SERVICES:
        path = log_dir / f"{service}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        found[service] = {name: len(re.findall(re.escape(pattern), text)) for name, pattern in LOG_PATTERNS.items()}
        found[service]["no log"] = int(not text.strip())
    return found


def log_check(findings: dict[str, dict[str, int]]) -> Check:
    bad = ("retried", "parked", "left unacked", "no log")
    return Check(
        "no handler retried, parked or left unacked (service logs, each present)",
        set(findings) == set(SERVICES) and not any(f.get(k) for f in findings.values() for k in bad),
        json.dumps({s: {k: v for k, v in f.items() if v} for s, f in findings.items()}),
    )


def completion_check(planned: int, completed: int, first_error: str | None = None) -> Check:
    """Every other check compares with the lifecycles that completed: with none (or few) of them
    they would pass for nothing (zero refunds, zero emails expected)."""
    return Check(
        "every planned lifecycle completed on the client (the checks above count these)",
        planned > 0 and completed == planned,
        f"{completed} of {planned}" + (f"; first failure: {first_error}" if first_error else ""),
    )
