"""What a buyer's flag change costs: its buyer.* is committed claimed for the outbox relay, unless
another replica's relay holds the buyer's document."""

from __future__ import annotations

from typing import Any

import pytest

from shared.clock import FixedClock
from shared.outbox import OutboxRelay
from shared.outbox_writes import LEASE, OWNER, PENDING
from tests.unit.metrics.builders import at, requested, return_event

pytestmark = pytest.mark.integration


def returns_of(buyer_id: str, count: int) -> list[Any]:
    return [
        return_event(
            requested(
                f"{buyer_id}-r{i}", order_id=f"{buyer_id}-o{i}", buyer_id=buyer_id, seller_id="s", created_at=at(i)
            )
        )
        for i in range(count)
    ]


async def publish_one_by_one(metrics: Any, events: list[Any], wait_until: Any) -> None:
    for event in events:
        await metrics.publish(event)
        await wait_until(lambda event=event: event.id in metrics.handled.ids, message=f"{event.id} processed")


async def released(metrics: Any, buyer_id: str) -> bool:
    doc = await metrics.db["buyers"].find_one({"_id": buyer_id})
    return doc is not None and doc["outbox"] == [] and not {PENDING, LEASE, OWNER} & doc.keys()


async def test_a_flag_that_flips_is_committed_claimed_and_released_in_one_write(
    service_commands, start_metrics, wait_until
):
    metrics = await start_metrics(FixedClock(at(10)), abuse_max_returns=3)
    first, second, third = returns_of("bf", 3)
    await publish_one_by_one(metrics, [first, second], wait_until)
    assert metrics.flags("bf") == []
    service_commands.clear()
    await publish_one_by_one(metrics, [third], wait_until)  # the third return reaches the threshold
    await wait_until(lambda: metrics.flags("bf"), message="buyer.flagged")
    await wait_until(lambda: released(metrics, "bf"), message="the outbox emptied")

    assert metrics.flags("bf") == ["buyer.flagged"]
    # The flag, its window and its event in one write that claims the document for the relay;
    # the relay's release.
    assert service_commands.writes("buyers") == ["findAndModify", "update"], service_commands.sent


async def test_a_flag_committed_while_another_replicas_relay_holds_the_buyer_waits_for_it(
    start_metrics, bus_factory, wait_until
):
    metrics = await start_metrics(FixedClock(at(10)), abuse_max_returns=3)
    first, second, third = returns_of("bh", 3)
    await publish_one_by_one(metrics, [first, second], wait_until)
    # Another replica's relay is publishing this buyer's document (its claim, a few seconds long).
    other = OutboxRelay(await bus_factory("metrics-2"), [metrics.db["buyers"]], claim_seconds=5)
    await metrics.db["buyers"].update_one({"_id": "bh"}, {"$set": other.claim()})

    await publish_one_by_one(metrics, [third], wait_until)
    doc = await metrics.db["buyers"].find_one({"_id": "bh"})
    assert doc["flagged"] and doc[OWNER] == other.owner  # committed without taking the claim over
    assert [e["type"] for e in doc["outbox"]] == ["buyer.flagged"]
    # Once the other relay's claim ends, this replica's relay finds the event (its sweep).
    await wait_until(lambda: released(metrics, "bh"), timeout=15, message="relayed after the claim ended")
    assert metrics.flags("bh") == ["buyer.flagged"]
