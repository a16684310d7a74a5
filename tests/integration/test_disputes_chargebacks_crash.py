"""Killed while Stripe holds its answer to the platform's evidence: a restart submits it once more with the
same idempotency key, and each chargeback event is published once.

The disputes service runs as a real process (`python -m services.disputes`). stripe-mock answers
every request alike and ignores idempotency keys, so a small stub stands in for Stripe's dispute
endpoint here: it records each call's key and can hold its answer (to kill the caller meanwhile).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.disputes.chargebacks.domain import chargeback_id
from services.disputes.settings import Settings
from tests.integration.disputes_chargebacks_support import (
    SECRET,
    announce,
    dispute,
    knows,
    sign,
    stripe_event,
)
from tests.integration.service_process import STARTUP_S, ServiceProcesses, kill9, ready
from tests.ports import free_port
from tests.queues import service_queues
from tests.unit.refunds.builders import make_order

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.chargebacks_plugin"]  # its fixture: `published`


class DisputeStub:
    """`POST /v1/disputes/{id}` over real HTTP: answers the dispute under review, records each key."""

    def __init__(self) -> None:
        self.keys: list[str | None] = []
        self.hold = threading.Event()  # set: answers wait for `release`
        self.release = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.keys.append(self.headers.get("Idempotency-Key"))
                if stub.hold.is_set():
                    stub.release.wait(30)
                dispute_id = self.path.rstrip("/").split("/")[-1]
                raw = json.dumps({"id": dispute_id, "object": "dispute", "status": "under_review"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def stub() -> Iterator[DisputeStub]:
    running = DisputeStub()
    yield running
    running.stop()


@pytest.fixture
def process_env(mongodb_url, amqp_url, db, exchange, queue_prefix, stub, tmp_path) -> dict[str, str]:
    return os.environ | {
        "MONGODB_URL": mongodb_url,
        "MONGODB_DB": db.name,
        "AMQP_URL": amqp_url,
        "EXCHANGE": exchange,
        "ORDERS_EXCHANGE": f"{queue_prefix}orders",
        "QUEUE_PREFIX": queue_prefix,
        "RETRY_DELAYS_MS": "[100,200]",
        "JWT_SECRET": "disputes-crash-secret-0123456789abcdef",
        "STRIPE_API_BASE": stub.url,
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "STRIPE_TIMEOUT_S": "30",
        "JOB_INTERVAL_S": "0.2",
        "OUTBOX_POLL_MS": "100",
        "OUTBOX_CLAIM_MS": "1000",  # the killed process's claims soon run out
        "CLOCK_FILE": str(tmp_path / "clock-offset"),
        "LOG_LEVEL": "WARNING",
        "PORT": str(free_port()),
    }


@pytest.fixture
async def run_service(process_env, amqp) -> AsyncIterator[Any]:
    processes = ServiceProcesses("services.disputes", process_env)
    yield processes.start
    processes.stop_all()
    settings = Settings(queue_prefix=process_env["QUEUE_PREFIX"], retry_delays_ms=[100, 200])
    async with amqp.channel() as channel:  # the service's queues and the test's orders exchange
        for name in service_queues(settings.queue_name, settings.retry_delays_ms):
            await channel.queue_delete(name)
        await channel.exchange_delete(process_env["ORDERS_EXCHANGE"])


def move_clock(clock_file: str, *, seconds: float) -> None:
    """The business clock of the service's processes (shared.clock.FileOffsetClock) moves ahead."""
    Path(clock_file).write_text(str(seconds))


async def test_killed_while_stripe_holds_the_evidence_then_restarted_submits_once(
    db, bus_factory, published, stub, run_service, process_env, wait_until
):
    port = process_env["PORT"]
    process = run_service()
    await wait_until(lambda: ready(port), timeout=STARTUP_S, interval=0.1, message="service did not start")
    order = make_order(reference=f"pi_{uuid.uuid4().hex[:16]}", lines=[("L1", 1, 2000)], shipping=0)
    await announce(await bus_factory("test-publisher"), process_env["ORDERS_EXCHANGE"], order, refunded=2000)
    await wait_until(lambda: knows(db, order.order_id, 2000), timeout=10, message="order events not consumed")

    opened = dispute(order.payment.reference)
    subject = chargeback_id(opened["id"])
    body = stripe_event("charge.dispute.created", opened)
    stub.hold.set()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

        async def deliver() -> None:
            headers = {"Stripe-Signature": sign(body), "Content-Type": "application/json"}
            try:
                await client.post("/v1/webhooks/stripe", content=body, headers=headers, timeout=30)
            except httpx.HTTPError:
                pass  # the process is killed while Stripe holds its answer

        delivery = asyncio.create_task(deliver())
        await wait_until(lambda: stub.keys, timeout=10, message="Stripe was never called")
        kill9(process)  # Stripe took the evidence; the service never hears back
        await delivery
    doc = await db["chargebacks"].find_one({"_id": subject})
    assert doc["status"] == "needs_response" and doc["submission"]["key"] == stub.keys[0]

    # Restarted a while later (past the submission's lease): the retry job submits it again.
    move_clock(process_env["CLOCK_FILE"], seconds=120)
    stub.hold.clear()
    stub.release.set()
    run_service()
    await wait_until(
        lambda: published.of_type("chargeback.evidence_submitted", subject),
        timeout=STARTUP_S,
        message="no chargeback.evidence_submitted after the restart",
    )
    assert len(stub.keys) >= 2 and set(stub.keys) == {stub.keys[0]}  # one submission, one key
    await wait_until(lambda: ready(port), timeout=STARTUP_S, interval=0.1, message="service did not restart")
    # Stripe redelivers the event it never got an answer to: nothing more happens.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        headers = {"Stripe-Signature": sign(body), "Content-Type": "application/json"}
        again = await client.post("/v1/webhooks/stripe", content=body, headers=headers, timeout=30)
    assert again.status_code == 200
    await wait_until(lambda: published.of_type("chargeback.opened", subject), message="no chargeback.opened")
    doc = await db["chargebacks"].find_one({"_id": subject})
    assert doc["status"] == "under_review" and doc["automatic"] and "submission" not in doc and doc["version"] == 2
    # At least once on the wire (a kill between publish and release repeats one), once per change.
    assert len({e.id for e in published.of_type("chargeback.opened", subject)}) == 1
    assert len({e.id for e in published.of_type("chargeback.evidence_submitted", subject)}) == 1
