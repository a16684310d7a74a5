"""The deadline job reads the store only when something is known to be due, or in a sweep.

Its two queries scan the refunds collection on the embedded server, so a run between sweeps acts
on what the replica knows: the deadlines of the due refunds it opened, and the lease ends of the
payments it began that an error interrupted (or that a sweep found pending).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.refunds.domain import return_refund_id
from services.refunds.store import RefundStore
from tests.integration.refunds.conftest import RefundsService
from tests.unit.refunds.builders import make_return

pytestmark = pytest.mark.integration


class StoreAway(Exception):
    """The store went away in the middle of a payment."""


async def spy_queries(service: RefundsService, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the job's scans as they are sent, from after its first run (a sweep, at start)."""
    job = service.app.state.deadline_job
    await service.wait_until(lambda: job._loop.runs >= 1, message="the job's first run did not end")
    store: RefundStore = service.app.state.store
    sent: list[str] = []
    for name in ("overdue", "stalled"):
        query = getattr(store, name)

        async def spied(*args: Any, name: str = name, query: Any = query) -> Any:
            sent.append(name)
            return await query(*args)

        monkeypatch.setattr(store, name, spied)
    return sent


async def test_between_sweeps_a_run_with_nothing_due_reads_nothing(service: RefundsService, monkeypatch) -> None:
    job = service.app.state.deadline_job
    sent = await spy_queries(service, monkeypatch)
    service.clock.set(datetime(2025, 7, 7, 12, tzinfo=UTC))  # the return's refund is due on the 8th
    order = await service.delivered()
    ret = make_return(order, ("L1", 1, "DEFECTIVE"), refund_mode="manual")
    event = await service.send("return.received", ret)
    await service.wait_until(lambda: service.handled(event.id), message="return.received not handled")

    assert await job.run_once() == (0, 0)  # its deadline has not come
    assert sent == []
    service.clock.set(ret.refund_due_at + timedelta(seconds=1))
    assert await job.run_once() == (1, 0)  # the deadline it knows of came: one look
    assert await job.run_once() == (0, 0)
    assert sent == ["overdue"]

    job._next_sweep = 0.0  # the sweep interval has passed
    assert await job.run_once() == (0, 0)
    assert sent == ["overdue", "overdue", "stalled"]


async def test_an_interrupted_payment_is_resumed_when_its_lease_ends(
    service: RefundsService, stripe_stub, published, monkeypatch
) -> None:
    job, refunds = service.app.state.deadline_job, service.app.state.refunds
    sent = await spy_queries(service, monkeypatch)
    monkeypatch.setattr(refunds.payer, "lease", timedelta(seconds=0.5))
    reserve = refunds.store.ledgers.reserve

    async def away(*args: Any) -> None:
        raise StoreAway

    monkeypatch.setattr(refunds.store.ledgers, "reserve", away)
    order = await service.delivered()
    ret = make_return(order, ("L1", 1, "DEFECTIVE"))
    with pytest.raises(StoreAway):
        await refunds.open_for_return(ret)  # the refund exists, claimed, and nobody is paying it
    monkeypatch.setattr(refunds.store.ledgers, "reserve", reserve)
    refund_id = return_refund_id(ret.return_id)
    assert (await service.refund_doc(refund_id))["status"] == "pending"

    assert await job.run_once() == (0, 0)  # its lease has not ended: nobody may pay it yet
    await asyncio.sleep(0.6)
    assert await job.run_once() == (0, 1)
    assert (await service.refund_doc(refund_id))["status"] == "issued"
    assert len(stripe_stub.posts()) == 1
    assert sent == []  # found without a scan
