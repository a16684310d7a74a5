"""Measure duplicate emails when notifications is killed -9 mid-send under load (issue 11, item 6).

    set -a && . .local/env && set +a
    uv run --frozen python -m tests.integration.notifications.measure_crash [--kills 5] [--events 300]
        [--rate 30] [--latency-ms 100] [--mode targeted|random] [--code-dir DIR] [--json FILE]

One real `python -m services.notifications` process (from --code-dir: point it at an export of an
older commit to compare) on the servers of .local/env, with its own database, exchange and
queues, sending to an SMTP server of this script's own (crashkit.CrashSink) that answers DATA after
--latency-ms, like a real relay. `return.created` events (two emails each) are published at --rate
per second. Every few seconds, a fault:
  targeted  the SMTP server SIGKILLs the sender right after accepting an email, before its 250
            reaches it: the email is delivered and not recorded (the worst moment);
  random    SIGKILL at a random moment of the load.
The process is restarted at once, as a supervisor would. When every email is settled, it reports:
emails owed, delivered, lost, duplicates (extra copies), the most copies of one email, whether
every copy of an email had the same Message-ID and bytes, and the time from each fault to the
second copy of the emails it duplicated. Settings are the service's defaults (DISPATCH_LEASE_S,
DISPATCH_POLL_MS, DISPATCH_WORKERS) unless given in the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
from motor.motor_asyncio import AsyncIOMotorClient

from services.notifications.samples import sample_data
from shared.bus import EventBus
from shared.events import new_event
from tests.integration.notifications.crashkit import REPO, CrashSink, ServiceProcess, service_env
from tests.queues import service_queues


def created(n: int) -> Any:
    data = sample_data("return.created")
    data = data.model_copy(update={"return_id": f"ret_m{n:06d}"})
    return new_event(
        "return.created",
        service="returns",
        subject=data.return_id,
        data=data,
        sequence=1,
        time=datetime.now(UTC),
        event_id=str(uuid.uuid4()),
    )


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    mongodb_url = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017")
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    database, exchange, prefix = f"measure_crash_{run}", f"measure-crash-{run}.events", f"measure-crash-{run}."
    logs = Path(tempfile.mkdtemp(prefix=f"measure-crash-{run}-"))
    sink = CrashSink(latency_s=args.latency_ms / 1000).start()
    env = service_env(
        mongodb_url=mongodb_url,
        database=database,
        amqp_url=amqp_url,
        exchange=exchange,
        queue_prefix=prefix,
        smtp_port=sink.port,
        LOG_LEVEL="WARNING",
    )
    for name in ("SMTP_TIMEOUT_S", "DISPATCH_POLL_MS", "SEND_RETRY_DELAYS_MS"):  # the service's defaults
        env.pop(name, None)
    env.update({k: v for k, v in os.environ.items() if k.startswith("DISPATCH_")})
    client = AsyncIOMotorClient(mongodb_url, tz_aware=True)
    db = client[database]
    processes: list[ServiceProcess] = []
    faults: list[dict[str, Any]] = []

    async def start() -> ServiceProcess:
        process = ServiceProcess(env, logs / f"notifications-{len(processes) + 1}.log", Path(args.code_dir)).start()
        processes.append(process)
        await process.ready()
        return process

    connection = await aio_pika.connect_robust(amqp_url)
    async with connection.channel() as channel:
        await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    publisher = EventBus(amqp_url, "measure", exchange=exchange, queue_name=f"{prefix}publisher")
    await publisher.connect()
    try:
        current = await start()
        published = 0
        started = time.monotonic()

        faults_done = asyncio.Event()

        async def load() -> None:  # at least --events, and on until the last fault
            nonlocal published
            while published < args.events or not faults_done.is_set():
                due = started + published / args.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await publisher.publish(created(published))
                published += 1

        loader = asyncio.create_task(load())
        for k in range(args.kills):
            await asyncio.sleep(args.spacing_s)
            if args.mode == "targeted":
                before = len(sink.killed())
                sink.kill_senders(1, [current.pid])
                waited = time.monotonic()
                while len(sink.killed()) == before:
                    if loader.done():
                        loader.result()  # raises what stopped the load
                    if not current.alive():
                        raise RuntimeError(f"notifications died on its own:\n{current.tail()}")
                    if time.monotonic() - waited > 60:
                        raise RuntimeError(
                            f"no email sent in 60 s ({published} events published, "
                            f"{len(sink.received())} emails received):\n{current.tail()}"
                        )
                    await asyncio.sleep(0.001)
                kill = sink.killed()[-1]
                faults.append(
                    {
                        "n": k + 1,
                        "at": kill.at,
                        "pid": kill.pid,
                        "accepted_message_id": kill.message_id,
                        "others_awaiting_the_servers_answer": kill.awaiting_answer,
                    }
                )
            else:
                await asyncio.sleep(random.uniform(0, args.spacing_s))
                current.kill()
                faults.append({"n": k + 1, "at": time.monotonic(), "pid": current.pid})
            current.reap()
            restart = time.monotonic()
            current = await start()
            faults[-1]["restarted_in_s"] = round(time.monotonic() - restart, 2)
            print(
                f"fault {k + 1}: pid {faults[-1]['pid']} killed, restarted in {faults[-1]['restarted_in_s']} s",
                file=sys.stderr,
            )
        faults_done.set()
        await loader

        # Every email owed settled (none pending); the consumer done with every event.
        deadline = time.monotonic() + args.settle_timeout_s
        while True:
            owed = await db.notifications.count_documents({})
            pending = await db.notifications.count_documents({"status": "pending"})
            if owed == 2 * published and pending == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"not settled after {args.settle_timeout_s}s: {owed} owed, {pending} pending")
            await asyncio.sleep(0.2)
        settled_at = time.monotonic()
        docs = {d["_id"]: d async for d in db.notifications.find({}, {"status": 1, "attempt_log": 1})}
    finally:
        for process in processes:
            process.kill()
        sink.stop()
        await publisher.close()
        async with connection.channel() as channel:
            for name in [*service_queues(f"{prefix}notifications", (1000, 5000, 30000)), f"{prefix}publisher.inbox"]:
                await channel.queue_delete(name)
            await channel.exchange_delete(exchange)
        await connection.close()
        await client.drop_database(database)
        client.close()

    copies: dict[str, list[Any]] = defaultdict(list)
    for received in sink.received():
        copies[received.notification_id].append(received)
    duplicated = {nid: got for nid, got in copies.items() if len(got) > 1}
    same = all(len({(g.message_id, g.raw) for g in got}) == 1 for got in duplicated.values())
    # The fault behind each duplicate: the one nearest to its first copy. The server accepted that
    # copy either shortly BEFORE the kill (the sender had the 250 but had not recorded it yet) or
    # AFTER it (the sender had sent the whole message and died before the server answered; the
    # server keeps the email all the same: RFC 1047's window, which no sender can close).
    fault_times = [f["at"] for f in faults]
    resend_after_fault, accepted_vs_fault, detail = [], [], []
    per_fault: dict[int, int] = defaultdict(int)
    for got in duplicated.values():
        if not fault_times:
            break
        i = min(range(len(fault_times)), key=lambda j: abs(fault_times[j] - got[0].at))
        per_fault[i + 1] += len(got) - 1
        resend_after_fault.append(got[1].at - fault_times[i])
        accepted_vs_fault.append(1000 * (got[0].at - fault_times[i]))
        detail.append(
            {
                "notification_id": got[0].notification_id,
                "fault": i + 1,
                "accepted_after_fault_ms": round(accepted_vs_fault[-1]),
                "again_after_fault_s": round(resend_after_fault[-1], 1),
                "attempt_log": [
                    (a["outcome"], a["at"].isoformat()) for a in docs[got[0].notification_id].get("attempt_log", [])
                ],
            }
        )
    statuses: dict[str, int] = defaultdict(int)
    for doc in docs.values():
        statuses[doc["status"]] += 1
    interrupted = sum(1 for d in docs.values() for a in d.get("attempt_log", []) if a["outcome"] == "interrupted")
    return {
        "code": args.code_dir,
        "mode": args.mode,
        "faults": len(faults),
        "events": published,
        "rate_per_s": args.rate,
        "smtp_latency_ms": args.latency_ms,
        "emails_owed": len(docs),
        "statuses": dict(statuses),
        "emails_delivered": len(copies),
        "emails_lost": len(set(docs) - set(copies)),
        "copies_received": sum(len(g) for g in copies.values()),
        "duplicates": sum(len(g) - 1 for g in duplicated.values()),
        "duplicated_emails": len(duplicated),
        "duplicates_per_fault": [per_fault.get(f["n"], 0) for f in faults],
        "max_copies_of_one_email": max((len(g) for g in copies.values()), default=0),
        "copies_identical": same,
        "attempts_logged_interrupted": interrupted,
        "resend_after_fault_s": {
            "min": round(min(resend_after_fault), 1),
            "median": round(statistics.median(resend_after_fault), 1),
            "max": round(max(resend_after_fault), 1),
        }
        if resend_after_fault
        else None,
        "first_copy_accepted_vs_fault_ms": {
            "before_kill": sum(1 for ms in accepted_vs_fault if ms < 0),
            "after_kill": sum(1 for ms in accepted_vs_fault if ms >= 0),
            "min": round(min(accepted_vs_fault)),
            "max": round(max(accepted_vs_fault)),
        }
        if accepted_vs_fault
        else None,
        "drained_after_last_fault_s": round(settled_at - fault_times[-1], 1) if fault_times else None,
        "faults_detail": [{k: v for k, v in f.items() if k != "at"} for f in faults],
        "duplicates_detail": detail if args.detail else None,
        "logs": str(logs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument(
        "--events",
        type=int,
        default=300,
        help="return.created events (2 emails each), at least; more until the last fault",
    )
    parser.add_argument("--rate", type=float, default=30.0, help="events per second")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="the SMTP server's answer to DATA")
    parser.add_argument("--spacing-s", type=float, default=1.5, help="load between a restart and the next fault")
    parser.add_argument("--mode", choices=("targeted", "random"), default="targeted")
    parser.add_argument("--code-dir", default=str(REPO), help="the tree whose services.notifications runs")
    parser.add_argument("--settle-timeout-s", type=float, default=300.0)
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--detail", action="store_true", help="list each duplicated email")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
