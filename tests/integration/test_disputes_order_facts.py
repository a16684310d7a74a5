"""The disputes service's order facts (services/disputes/orders.py) against the real store: facts
handled at once are written together, and none is lost when several create the order's document."""

from __future__ import annotations

import asyncio

import pytest

from services.disputes.orders import OrderBook
from shared.models import ReturnStatus
from tests.unit.metrics.builders import at, order, received, refund, requested

pytestmark = pytest.mark.integration


async def test_facts_of_a_new_order_handled_at_once_all_land_in_few_writes(db):
    book = OrderBook(db["order_facts"])
    orders = [order(f"o-{i}", buyer_id="b", seller_id="s", delivered_at=at(1), skus={"SKU-A": 1}) for i in range(10)]
    returns = [
        received(requested(f"r-{i}", order_id=f"o-{i}", buyer_id="b", seller_id="s", created_at=at(2)), at(3))
        for i in range(10)
    ]
    refunds = [refund(ret, issued_at=at(4), amount=1000) for ret in returns]

    # The order's snapshot, its return and its refund, all before any document exists: each of the
    # three may be the one that creates it; the others must still apply.
    await asyncio.gather(
        *(book.save_order(o) for o in orders),
        *(book.note_return(r) for r in returns),
        *(book.note_refund(f) for f in refunds),
        book.note_refund(refunds[0]),  # a redelivery counts once
    )

    for i in range(10):
        facts = await book.get(f"o-{i}")
        assert facts is not None, i
        assert facts.order.order_id == f"o-{i}"
        assert facts.refunded == 1000
        assert facts.returns[f"r-{i}"].status == ReturnStatus.RECEIVED
        assert facts.returns[f"r-{i}"].refunded
    assert book._upserts.group.batches < 31  # one by one would be 31 writes


async def test_an_older_return_version_after_a_newer_one_changes_nothing(db):
    book = OrderBook(db["order_facts"])
    first = requested("r-v", order_id="o-v", buyer_id="b", seller_id="s", created_at=at(2))
    later = received(first, at(3))
    await asyncio.gather(book.note_return(later), book.note_return(first))
    stored = await db["order_facts"].find_one({"_id": "o-v"})  # no snapshot yet: the raw document
    assert stored["returns"]["r-v"]["status"] == ReturnStatus.RECEIVED.value
    assert stored["returns"]["r-v"]["version"] == later.version > first.version
