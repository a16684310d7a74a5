"""The store-credit chain on the real MongoDB-wire server, from separate connections at once (as
replicas would): debits never overdraw, a movement lands once, a stale cached head is walked past."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from motor.motor_asyncio import AsyncIOMotorClient

from services.refunds.store_credit import entries
from services.refunds.store_credit.store import StoreCreditStore
from shared.clock import FixedClock
from shared.contract_base import Actor, Party
from shared.money import Money

pytestmark = pytest.mark.integration
CLOCK = FixedClock(datetime(2025, 7, 9, 16, 0, tzinfo=UTC))
BUYER = Party(id="b-9", name="Bo", email="bo@example.com")


def usd(amount: int) -> Money:
    return Money(amount=amount, currency="USD")


def debit(key: str, amount: int):
    return entries.debit(
        buyer_id=BUYER.id,
        idempotency_key=key,
        amount=usd(amount),
        reference=key,
        note=None,
        actor=Actor(role="service", id="checkout"),
        at=CLOCK.now(),
    )


@pytest.fixture
async def stores(mongodb_url, db):
    """Eight stores on one database, each with a client (and connection) of its own."""
    clients = [AsyncIOMotorClient(mongodb_url, tz_aware=True, maxPoolSize=1) for _ in range(8)]
    for client in clients:
        await client.admin.command("ping")
    made = [StoreCreditStore(client[db.name], CLOCK) for client in clients]
    await made[0].ensure_indexes()
    yield made
    for client in clients:
        client.close()


async def test_debits_from_separate_connections_never_overdraw(stores):
    grant = entries.grant(refund_id="rf_1", buyer=BUYER, amount=usd(10_000), bonus=None, at=CLOCK.now())
    await stores[0].apply(grant)

    results = await asyncio.gather(
        *(store.apply(debit(f"k-{n}", 1500)) for n, store in enumerate(stores)), return_exceptions=True
    )

    applied = [r for r in results if not isinstance(r, BaseException)]
    assert len(applied) == 6 and all(isinstance(r, entries.BalanceExceeded) for r in results if r not in applied)
    assert sorted(entry.balance.amount for entry, _ in applied) == [1000, 2500, 4000, 5500, 7000, 8500]
    assert (await stores[3].account(BUYER.id)).balances == [usd(1000)]


async def test_one_grant_and_one_debit_per_key_from_every_connection(stores):
    grant = entries.grant(refund_id="rf_2", buyer=BUYER, amount=usd(5000), bonus=usd(250), at=CLOCK.now())
    grants = await asyncio.gather(*(store.apply(grant) for store in stores))
    debits = await asyncio.gather(*(store.apply(debit("same", 700)) for store in stores))

    assert [created for _, created in grants].count(True) == 1 and len({e.model_dump_json() for e, _ in grants}) == 1
    assert [created for _, created in debits].count(True) == 1 and len({e.model_dump_json() for e, _ in debits}) == 1
    assert (await stores[0].account(BUYER.id)).balances == [usd(4550)]
    assert await stores[0].entries.count_documents({}) == 2


async def test_a_head_cached_late_is_walked_past_and_repaired(stores):
    store = stores[0]
    await store.apply(entries.grant(refund_id="rf_3", buyer=BUYER, amount=usd(900), bonus=None, at=CLOCK.now()))
    await store.accounts.update_one({"_id": BUYER.id}, {"$set": {"seq": 0, "balances": {}}})  # as if never cached

    assert (await store.account(BUYER.id)).balances == [usd(900)]
    assert await store.accounts.find_one({"_id": BUYER.id}) == {"_id": BUYER.id, "seq": 1, "balances": {"USD": 900}}
    entry, created = await store.apply(debit("after", 900))
    assert created and entry.balance == usd(0) and (await store.account(BUYER.id)).balances == []
