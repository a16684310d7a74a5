"""`returns_platform_transitions_total{type}`: one per event committed with a return's state change."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.integration.returns.factories import order_data, unique


def transitions(event_type: str) -> float:
    return REGISTRY.get_sample_value("returns_platform_transitions_total", {"type": event_type}) or 0.0


async def test_committed_transitions_are_counted_once_each(api):
    created, authorized = transitions("return.created"), transitions("return.authorized")
    rejected = transitions("return.rejected")
    order = await api.put_order(order_data(order_id=unique("o"), seller_id="s-1", buyer_id="b-1"))
    ret = await api.create_return(order["order_id"], ("L1", 1, "DEFECTIVE"), buyer="b-1", key=unique("k"))
    assert transitions("return.created") == created + 1
    await api.authorize(ret["return_id"], seller="s-1")
    refused = await api.client.post(f"/v1/returns/{ret['return_id']}/reject", json={}, headers=api.as_seller("s-1"))
    assert refused.status_code >= 400  # refused: nothing committed, nothing counted
    assert transitions("return.authorized") == authorized + 1
    assert transitions("return.rejected") == rejected
