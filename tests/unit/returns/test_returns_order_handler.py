"""`order.delivered`: the upstream's snapshots are stored by sequence; the service's own announcement
of a snapshot it took over HTTP is not stored again (the PUT stored it, without a sequence of theirs)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from services.returns.handlers import order_delivered
from shared.events import new_event
from tests.unit.returns.builders import make_order

NOW = datetime(2025, 3, 1, tzinfo=UTC)


class Store:
    def __init__(self) -> None:
        self.saved: list[tuple[str, int]] = []

    async def save_order(self, order: Any, *, sequence: int = 0) -> bool:
        self.saved.append((order.order_id, sequence))
        return True


async def test_the_upstreams_snapshot_is_stored_with_its_sequence_our_own_announcement_is_not():
    store = Store()
    lifecycle: Any = SimpleNamespace(store=store)
    order = make_order()
    upstream = new_event("order.delivered", service="orders", subject=order.order_id, data=order, sequence=7, time=NOW)
    ours = new_event("order.delivered", service="returns", subject=order.order_id, data=order, sequence=1, time=NOW)

    await order_delivered(lifecycle, ours, order)
    await order_delivered(lifecycle, upstream, order)

    assert store.saved == [(order.order_id, 7)]
