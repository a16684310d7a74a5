"""Store credit killed with SIGKILL mid-load: after a restart, retried grants and debits apply once,
the balance is exactly what the entries say, and every entry's event is published.

The service runs as a real process (`python -m services.refunds`) and is killed while debits are in
flight, between whatever two steps each was at (entry inserted or not, head cached or not, event
published or not). The debits are then retried with the same Idempotency-Keys by another caller
(whose requests the HTTP layer's own key records don't know), so only the ledger keeps them once.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator

import httpx
import pytest

from services.refunds.store_credit.gateway import StoreCreditGateway
from services.refunds.store_credit.store import ENTRIES, StoreCreditStore
from tests.integration.refunds.store_credit_support import (
    BUYER,
    all_published,
    credit_events,
    grant_request,
    post_debit,
)
from tests.integration.service_process import STARTUP_S, ServiceProcesses, kill9, ready
from tests.ports import free_port

pytestmark = pytest.mark.integration
__all__ = ["credit_events"]
DEBITS = 30


@pytest.fixture
def process_env(refunds_settings) -> dict[str, str]:
    s = refunds_settings
    return os.environ | {
        "MONGODB_URL": s.mongodb_url,
        "MONGODB_DB": s.database_name,
        "AMQP_URL": s.amqp_url,
        "EXCHANGE": s.exchange,
        "ORDERS_EXCHANGE": s.orders_exchange,
        "QUEUE_PREFIX": s.queue_prefix,
        "RETRY_DELAYS_MS": json.dumps(s.retry_delays_ms),  # the queues the harness deletes after the test
        "JWT_SECRET": s.jwt_secret,
        "STRIPE_API_BASE": s.stripe_api_base,
        "OUTBOX_POLL_MS": "100",
        "OUTBOX_CLAIM_MS": "1000",  # the killed process's claims soon run out
        "LOG_LEVEL": "WARNING",
        "PORT": str(free_port()),
    }


@pytest.fixture
def run_service(process_env) -> Iterator:
    processes = ServiceProcesses("services.refunds", process_env)
    yield processes.start
    processes.stop_all()


async def debit_all(http: httpx.AsyncClient, headers: dict[str, str]) -> list[httpx.Response | BaseException]:
    calls = (post_debit(http, headers, 1000, key=f"k-{n}", reference=f"chk-{n}") for n in range(DEBITS))
    return await asyncio.gather(*calls, return_exceptions=True)


async def test_killed_mid_debits_then_restarted_applies_each_once(
    harness, credit_events, run_service, process_env, wait_until
):
    port = process_env["PORT"]
    process = run_service()
    await wait_until(lambda: ready(port), timeout=STARTUP_S, interval=0.1, message="service did not start")
    # Granted the way the refunds' payer does it (the service's sweep publishes its event).
    gateway = StoreCreditGateway(StoreCreditStore(harness.db, harness.clock), harness.clock)
    await gateway.refund(grant_request("rf_crash", 100_000))
    entries = harness.db[ENTRIES]

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        load = asyncio.create_task(debit_all(http, harness.token("agent", "a-1")))
        await wait_until(
            lambda: _count(entries, 6), timeout=30, interval=0.005, message="no debit landed before the kill"
        )
        kill9(process)
        first = await load
    assert any(isinstance(r, BaseException) for r in first), "the kill came after every debit: nothing was cut"

    run_service()
    await wait_until(lambda: ready(port), timeout=STARTUP_S, interval=0.1, message="service did not restart")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        again = await debit_all(http, harness.token("agent", "a-2"))
        account = await http.get(f"/v1/store-credit/{BUYER.id}", headers=harness.token("buyer", BUYER.id))

    assert all(not isinstance(r, BaseException) and r.status_code == 201 for r in again), again
    by_key = {r.json()["reference"]: r.json()["entry_id"] for r in again if isinstance(r, httpx.Response)}
    for n, response in enumerate(first):  # what answered before the kill is what the retry got
        if isinstance(response, httpx.Response) and response.status_code == 201:
            assert response.json()["entry_id"] == by_key[f"chk-{n}"]
    assert account.json()["balances"] == [{"amount": 100_000 - DEBITS * 1000, "currency": "USD"}]
    docs = [doc async for doc in entries.find({}, {"kind": 1, "balance": 1, "seq": 1})]
    assert len(docs) == DEBITS + 1
    assert sorted(d["seq"] for d in docs) == list(range(1, DEBITS + 2))  # one unbroken chain
    assert sorted(d["balance"]["amount"] for d in docs if d["kind"] == "debit") == list(
        range(100_000 - DEBITS * 1000, 100_000, 1000)
    )
    await all_published(harness, credit_events)
    published = {e.data["entry_id"] for e in credit_events.events if e.subject == BUYER.id}
    assert published == {d["_id"] for d in docs}  # every entry announced (duplicates share an id)
    assert len({e.id for e in credit_events.of_type("store_credit.debited")}) == DEBITS


async def _count(entries, at_least: int) -> bool:
    return await entries.count_documents({}) >= at_least
