"""The fault runs' tally (bench/chaos/): per lifecycle the server acknowledged, what was lost, doubled
or stuck, by step, from outside."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

import httpx
from motor.motor_asyncio import AsyncIOMotorClient

from bench.chaos.kinds import STATUS_RANK
from bench.load import Tokens, seller_id
from bench.stack import StackConfig
from bench.verify import list_all

EVENT_STEP = {
    "return.created": 1,
    "return.authorized": 2,
    "return.shipped": 3,
    "return.received": 4,
    "return.refunded": 5,
    "refund.issued": 5,
}
TEMPLATE_STEP = {
    "buyer/return_requested": 1,
    "seller/new_request": 1,
    "buyer/return_authorized": 2,
    "seller/return_shipped": 3,
    "buyer/item_received": 4,
    "seller/item_received": 4,
    "buyer/refunded": 5,
}


def _bucket() -> dict[str, Any]:
    return {"expected": 0, "lost": 0, "duplicated": 0, "stuck": 0, "examples": []}


def _note(bucket: dict[str, Any], kind: str, example: str, n: int = 1) -> None:
    bucket[kind] += n
    if len(bucket["examples"]) < 5:
        bucket["examples"].append(f"{kind}: {example}")


async def fault_tally(
    config: StackConfig,
    tokens: Tokens,
    outcomes: list[Any],
    mongodb_url: str,
    events: list[dict[str, Any]],
    mails: list[dict[str, Any]],
    sellers: int,
    period_from: datetime,
) -> dict[str, Any]:
    """Every lifecycle the server acknowledged, counted from outside after a fault run.

    What is owed follows from how far the client got (`acked`: 1 created .. 4 received; a received
    return owes a refund, one payment, six events and seven emails). For each thing owed:
      duplicated  more than one (refunds, ledger payments, distinct event ids per return and type,
                  SMTP deliveries per (return, template));
      lost        gone for good: an acknowledged return the server no longer has; no refund or no
                  payment although the return / refund says it happened; an event missing although
                  the state it announces was reached and nothing is left in the aggregate's outbox;
                  an email owed with no record in the notification log, or recorded sent but never
                  delivered;
      stuck       not done yet but still on its way or parked: a refund not issued, a payment not
                  made for it, an event still in an outbox or whose state was never reached, an
                  email recorded but not sent.
    Whatever a return that is gone still owed is lost, not stuck: it can never come.
    """

    tally = {k: _bucket() for k in ("returns", "refunds", "payments", "events", "emails")}
    acked = [o for o in outcomes if o.return_id]
    agent = tokens("agent", "bench", "returns")
    statuses: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=config.base_url("returns"), timeout=120) as client:
        gate = asyncio.Semaphore(8)

        async def status_of(rid: str) -> None:
            async with gate:
                r = await client.get(f"/v1/returns/{rid}", headers=agent)
                statuses[rid] = r.json()["status"] if r.status_code == 200 else ("" if r.status_code == 404 else "?")

        await asyncio.gather(*(status_of(o.return_id) for o in acked))
    async with httpx.AsyncClient(base_url=config.base_url("refunds"), timeout=120) as client:
        refunds = []
        for n in range(sellers):
            refunds += await list_all(
                client, "/v1/refunds", tokens("agent", "bench", "refunds"), {"seller_id": seller_id(config.run_id, n)}
            )
    async with httpx.AsyncClient(base_url=config.base_url("notifications"), timeout=300) as client:
        notes = await list_all(client, "/v1/notifications", tokens("agent", "bench", "notifications"))
    mongo = AsyncIOMotorClient(mongodb_url, tz_aware=True)
    try:
        entries = [d async for d in mongo[config.database("refunds")]["ledger_entries"].find({}, {"return_id": 1})]
        pending_returns = {
            d["_id"]
            async for d in mongo[config.database("returns")]["returns"].find({"outbox_pending": True}, {"_id": 1})
        }
        pending_refunds = {
            d.get("return_id")
            async for d in mongo[config.database("refunds")]["refunds"].find({"outbox_pending": True}, {"return_id": 1})
        }
    finally:
        mongo.close()

    refunds_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in refunds:
        refunds_of[r.get("return_id")].append(r)
    refund_to_return = {r["refund_id"]: r.get("return_id") for r in refunds}
    paid = Counter(e.get("return_id") for e in entries)
    ids_per: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in events:
        subject = e.get("subject")
        if e["type"].startswith("refund."):  # the event's own return id: the refund may be gone from the store
            rid = e.get("return_id") or refund_to_return.get(subject, subject)
        else:
            rid = subject
        ids_per[(rid, e["type"])].add(e["id"])
    notes_of: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for n in notes:
        notes_of[(n.get("return_id"), n["template"])].append(n)
    delivered = Counter(m["notification_id"] for m in mails)

    for o in acked:
        rid, status = o.return_id, statuses.get(o.return_id, "?")
        rank = STATUS_RANK.get(status, 0)
        owes_refund = o.acked >= 4
        gone = status == ""  # what it still owed can never come: lost, not stuck
        tally["returns"]["expected"] += 1
        if status == "":
            _note(tally["returns"], "lost", f"{rid} (acknowledged up to step {o.acked}) is gone")
        elif o.lost_ack:
            _note(tally["returns"], "lost", f"{rid}: {o.lost_ack}")
        elif status == "?":  # neither 200 nor 404: unknown, so it must not pass as fine
            _note(tally["returns"], "stuck", f"{rid}: its status could not be read")
        found = refunds_of.get(rid, [])
        issued = [r for r in found if r["status"] == "issued"]
        if owes_refund or found:
            tally["refunds"]["expected"] += 1
            if len(found) > 1:
                _note(tally["refunds"], "duplicated", f"{rid}: {len(found)} refunds", len(found) - 1)
            if not found:
                _note(
                    tally["refunds"],
                    "lost" if rank >= 5 or gone else "stuck",
                    f"{rid}: no refund, return {status or 'gone'}",
                )
            elif not issued:
                _note(tally["refunds"], "stuck", f"{rid}: refund {found[0]['status']}")
            elif any(r["amount"]["amount"] != o.plan.expected_refund for r in issued):
                _note(
                    tally["refunds"],
                    "duplicated" if issued[0]["amount"]["amount"] > o.plan.expected_refund else "lost",
                    f"{rid}: amount {issued[0]['amount']['amount']} != {o.plan.expected_refund}",
                )
            tally["payments"]["expected"] += 1
            if paid[rid] > 1:
                _note(tally["payments"], "duplicated", f"{rid}: paid {paid[rid]} times", paid[rid] - 1)
            elif paid[rid] == 0:
                _note(
                    tally["payments"],
                    "lost" if issued or gone else "stuck",
                    f"{rid}: unpaid, refund "
                    f"{issued[0]['status'] if issued else (found[0]['status'] if found else 'missing')}",
                )
        reached = max(rank, o.acked)
        for event_type, step in EVENT_STEP.items():
            if step > (5 if owes_refund else o.acked):
                continue
            tally["events"]["expected"] += 1
            n = len(ids_per.get((rid, event_type), ()))
            if n > 1:
                _note(tally["events"], "duplicated", f"{rid} {event_type} x{n}", n - 1)
            elif n == 0:
                happened = bool(issued) if event_type == "refund.issued" else reached >= step
                pending = rid in (pending_refunds if event_type.startswith("refund.") else pending_returns)
                _note(
                    tally["events"],
                    "lost" if (happened and not pending) or gone else "stuck",
                    f"{rid} {event_type} (return {status or 'gone'})",
                )
        for template, step in TEMPLATE_STEP.items():
            if step > (5 if owes_refund else o.acked):
                continue
            tally["emails"]["expected"] += 1
            records = notes_of.get((rid, template), [])
            got = sum(delivered[n["notification_id"]] for n in records)
            if got > 1:
                _note(tally["emails"], "duplicated", f"{rid} {template} x{got}", got - 1)
            elif got == 0:
                unsent = [n for n in records if n.get("status") != "sent"]
                why = (
                    f"log {unsent[0]['status']}" if unsent else "sent, never delivered" if records else "no log record"
                )
                _note(tally["emails"], "stuck" if unsent and not gone else "lost", f"{rid} {template}: {why}")
    tally["emails"]["missing"] = tally["emails"]["lost"] + tally["emails"]["stuck"]
    tally["emails"]["unknown_deliveries"] = sum(
        v for k, v in delivered.items() if k not in {n["notification_id"] for n in notes}
    )

    # Metrics count facts, so a lost or doubled fact shows as a count off.
    expected_counts = {
        name: sum(o.acked >= step for o in acked)
        for step, name in enumerate(("requests", "authorizations", "shipments", "receipts"), start=1)
    }
    expected_counts["refunds"] = sum(
        1 for o in acked if any(r["status"] == "issued" for r in refunds_of.get(o.return_id, []))
    )
    headers = tokens("agent", "bench", "metrics")
    until = datetime.now(period_from.tzinfo) + timedelta(minutes=5)
    params = {"from": period_from.isoformat(), "to": until.isoformat()}
    async with httpx.AsyncClient(base_url=config.base_url("metrics"), timeout=120) as client:
        counts = (await client.get("/v1/metrics/overview", headers=headers, params=params)).json().get("counts", {})
    tally["metrics_off"] = {k: f"{counts.get(k)} != {v}" for k, v in expected_counts.items() if counts.get(k) != v}
    tally["metrics_counts"] = counts
    return tally
