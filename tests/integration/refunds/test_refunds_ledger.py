"""The per-order ledger on the real MongoDB-wire server: concurrent reservations never overdraw."""

from __future__ import annotations

import asyncio

import pytest

from services.refunds.order_ledger import CapExceeded, NoLedger, OrderLedgers

pytestmark = pytest.mark.integration


async def test_concurrent_reservations_never_exceed_what_was_paid(db):
    ledgers = OrderLedgers(db["order_ledgers"])
    await ledgers.open("o-1", "USD", 4000)

    results = await asyncio.gather(
        *(ledgers.reserve("o-1", f"rf_{n}", 1500) for n in range(10)), return_exceptions=True
    )

    won = [n for n, result in enumerate(results) if result is None]
    assert len(won) == 2 and all(isinstance(r, CapExceeded) for r in results if r is not None)
    ledger = await ledgers.get("o-1")
    assert (ledger["available"], ledger["reserved"], sorted(ledger["reservations"])) == (
        1000,
        3000,
        sorted(f"rf_{n}" for n in won),
    )


async def test_every_step_is_idempotent_per_refund(db):
    ledgers = OrderLedgers(db["order_ledgers"])
    await ledgers.open("o-2", "JPY", 5000)
    await ledgers.open("o-2", "JPY", 9999)  # a redelivered order.delivered changes nothing

    for _ in range(2):
        await ledgers.reserve("o-2", "rf_a", 3000)
    await ledgers.reserve("o-2", "rf_b", 2000)
    await ledgers.release("o-2", "rf_b")
    await ledgers.release("o-2", "rf_b")
    for _ in range(2):
        await ledgers.settle("o-2", "rf_a", 3000)
    await ledgers.reserve("o-2", "rf_a", 3000)  # already paid: no second reservation

    ledger = await ledgers.get("o-2")
    assert (ledger["paid"], ledger["refunded"], ledger["reserved"], ledger["available"]) == (5000, 3000, 0, 2000)
    with pytest.raises(CapExceeded):
        await ledgers.reserve("o-2", "rf_c", 2001)
    with pytest.raises(NoLedger):
        await ledgers.reserve("o-unknown", "rf_d", 1)
