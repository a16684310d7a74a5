"""The buyer's window kept in their document, against the real servers: the same standings and flag
decisions as assessing the stored facts, each return or delivery counted once however often it
comes, and two events of one buyer handled at once by two replicas both counted."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from services.metrics.abuse import assess
from services.metrics.flags import BuyerFlags
from services.metrics.handlers import order_delivered, return_changed
from services.metrics.store import MetricsStore
from shared.clock import FixedClock
from shared.models import Order, Return
from tests.integration.metrics.scenario import events
from tests.unit.metrics.builders import at, authorized, order, order_event, requested, return_event

pytestmark = pytest.mark.integration


async def _processed(metrics, count: int) -> bool:
    return await metrics.processed() == count


async def _copies(metrics, count: int) -> bool:
    return await metrics.copies_handled() == count


def _parts(metrics) -> tuple[BuyerFlags, MetricsStore]:
    flags: BuyerFlags = metrics.app.state.reports.flags
    return flags, flags.store


async def test_standings_and_flags_are_those_the_stored_facts_give(start_metrics, wait_until):
    """The scripted fortnight, shuffled and re-published under new ids: for every buyer the API's
    figures and the stored flag are what assessing the buyer's stored facts decides (the former way)."""
    clock = FixedClock(at(20))
    metrics = await start_metrics(clock)
    # Plus buyers whose deliveries decide: b10 returns 2 of 4 orders (flagged), b11 1 of 4 (not).
    script = events() + [
        order_event(order(f"o-{b}-{i}", buyer_id=b, seller_id="sC", delivered_at=at(i), skus={"A": 1}))
        for b in ("b10", "b11")
        for i in range(4)
    ]
    script += [
        return_event(requested(f"r-{b}-{i}", order_id=f"o-{b}-{i}", buyer_id=b, seller_id="sC", created_at=at(5 + i)))
        for b, count in (("b10", 2), ("b11", 1))
        for i in range(count)
    ]
    again = [e.model_copy(update={"id": str(uuid.uuid4())}) for e in script]
    stream = script + again
    random.Random(7).shuffle(stream)
    for event in stream:
        await metrics.publish(event)
    await wait_until(lambda: _processed(metrics, len(stream)), timeout=20, message="every event processed")
    await wait_until(metrics.outbox_drained, timeout=10, message="buyer events published")

    flags, store = _parts(metrics)
    buyers = await store.buyers_with_facts()
    assert buyers == {"b1", "b2", "b3", "b4", "b5", "b6", "b9", "b10", "b11"}
    flagged = set()
    for buyer_id in sorted(buyers):
        facts = await store.buyer_facts(buyer_id, at(20) - flags.thresholds.window)
        reference = assess(buyer_id, *facts, at(20), flags.thresholds)
        figures = await metrics.get(f"/v1/metrics/buyers/{buyer_id}")
        assert (figures["returns"], figures["orders"], figures["returned_orders"]) == (
            reference.returns,
            reference.orders,
            reference.returned_orders,
        ), buyer_id
        assert figures["flag"]["flagged"] is reference.flagged, buyer_id
        flagged |= {buyer_id} if reference.flagged else set()
    assert flagged == {"b9", "b10"}
    assert metrics.flags("b9") == metrics.flags("b10") == ["buyer.flagged"] and metrics.flags("b11") == []


async def test_the_same_return_and_delivery_count_once_however_often_they_come(start_metrics, wait_until):
    metrics = await start_metrics(FixedClock(at(10)))
    created = return_event(requested("r-dup", order_id="o-dup", buyer_id="bd", seller_id="s", created_at=at(2)))
    delivered = order_event(order("o-dup", buyer_id="bd", seller_id="s", delivered_at=at(1), skus={"A": 1}))
    # Through the broker: the same event twice (no inbox: both copies are handled) and re-published
    # under a new id.
    for event in (created, created, delivered, delivered):
        await metrics.publish(event)
    for event in (created, delivered):
        await metrics.publish(event.model_copy(update={"id": str(uuid.uuid4())}))
    await wait_until(lambda: _processed(metrics, 4), message="4 distinct events processed")
    await wait_until(lambda: _copies(metrics, 6), message="6 copies handled")
    # And straight into the handlers, as a redelivery after a crash would.
    flags, _ = _parts(metrics)
    for _ in range(2):
        await return_changed(flags, created, Return.model_validate(created.data))
        await order_delivered(flags, delivered, Order.model_validate(delivered.data))

    doc = await metrics.db["buyers"].find_one({"_id": "bd"})
    assert [e["id"] for e in doc["window_returns"]] == ["r-dup"]
    assert [e["id"] for e in doc["window_deliveries"]] == ["o-dup"]
    # Written once per entry: a copy that changes neither the window nor the standing writes nothing.
    assert doc["revision"] == 2
    figures = await metrics.get("/v1/metrics/buyers/bd")
    assert (figures["returns"], figures["orders"], figures["returned_orders"]) == (1, 1, 1)


async def test_a_return_seen_before_its_return_created_counts_at_once_and_once(start_metrics, wait_until):
    metrics = await start_metrics(FixedClock(at(10)))
    first = requested("r-early", buyer_id="be", seller_id="s", created_at=at(2))
    await metrics.publish(return_event(authorized(first, at(3))))
    await wait_until(lambda: _processed(metrics, 1), message="return.authorized processed")
    assert (await metrics.get("/v1/metrics/buyers/be"))["returns"] == 1
    await metrics.publish(return_event(first))
    await wait_until(lambda: _processed(metrics, 2), message="return.created processed")
    assert (await metrics.get("/v1/metrics/buyers/be"))["returns"] == 1


async def test_two_replicas_handling_one_buyers_events_at_once_count_both(start_metrics, wait_until):
    """Two stores (two replicas: no shared in-process lock) both read the buyer's document before
    either writes; the write conditional on the revision read makes the later one apply its event
    again on the newer document, so both returns count and the crossing is announced once."""
    metrics = await start_metrics(FixedClock(at(10)), abuse_max_returns=2)
    flags, store = _parts(metrics)
    await return_changed(  # the buyer's document exists: both replicas update it
        flags, *_created(requested("r-0", order_id="o-0", buyer_id="bc", seller_id="s", created_at=at(1)))
    )

    both_read = asyncio.Barrier(2)
    reads = 0

    def replica() -> BuyerFlags:
        replica_store = MetricsStore(store.db)
        window = replica_store._window

        async def read_then_wait(*args, **kwargs):
            nonlocal reads
            reads += 1
            result = await window(*args, **kwargs)
            if reads <= 2:  # the first read of each replica: neither writes before both have read
                await both_read.wait()
            return result

        replica_store._window = read_then_wait  # type: ignore[method-assign]
        return BuyerFlags(replica_store, flags.thresholds, flags.clock, flags.on_change)

    await asyncio.gather(
        return_changed(
            replica(), *_created(requested("r-1", order_id="o-1", buyer_id="bc", seller_id="s", created_at=at(2)))
        ),
        return_changed(
            replica(), *_created(requested("r-2", order_id="o-2", buyer_id="bc", seller_id="s", created_at=at(3)))
        ),
    )
    assert reads == 3  # one replica lost the race and read again

    doc = await metrics.db["buyers"].find_one({"_id": "bc"})
    assert sorted(e["id"] for e in doc["window_returns"]) == ["r-0", "r-1", "r-2"]
    assert (doc["returns"], doc["flagged"], doc["version"]) == (3, True, 1)
    await wait_until(lambda: metrics.flags("bc"), message="buyer.flagged")
    await wait_until(metrics.outbox_drained, message="outbox drained")
    assert metrics.flags("bc") == ["buyer.flagged"]


async def test_a_buyer_document_from_before_windows_is_seeded_from_the_facts(start_metrics, wait_until):
    metrics = await start_metrics(FixedClock(at(10)))
    flags, _ = _parts(metrics)
    for i in range(2):
        await return_changed(
            flags, *_created(requested(f"r-l{i}", order_id=f"o-l{i}", buyer_id="bl", seller_id="s", created_at=at(i)))
        )
    # As the former version left it: flag state and figures, no window, no revision.
    await metrics.db["buyers"].update_one(
        {"_id": "bl"}, {"$unset": {"window_returns": "", "window_deliveries": "", "revision": ""}}
    )
    await return_changed(
        flags, *_created(requested("r-l2", order_id="o-l2", buyer_id="bl", seller_id="s", created_at=at(2)))
    )
    doc = await metrics.db["buyers"].find_one({"_id": "bl"})
    assert sorted(e["id"] for e in doc["window_returns"]) == ["r-l0", "r-l1", "r-l2"]
    assert (doc["returns"], doc["revision"]) == (3, 1)


def _created(ret: Return):
    event = return_event(ret)
    return event, Return.model_validate(event.data)
