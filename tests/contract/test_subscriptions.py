"""Each service's SUBSCRIPTIONS list against the event registry (shared.events.EVENT_TYPES)."""

from __future__ import annotations

import importlib

import pytest
from pydantic import BaseModel

from services.metrics import handlers as metrics
from shared.events import EVENT_TYPES, EventType
from shared.messaging import Subscription
from shared.models import Return
from tests.contract.support import SERVICES


def subscriptions(service: str) -> list[Subscription]:
    return list(importlib.import_module(f"services.{service}.handlers").SUBSCRIPTIONS)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_subscribes_only_to_registered_types_once_each(service):
    listed = subscriptions(service)
    assert listed and all(isinstance(s, Subscription) for s in listed)
    types = [s.event_type for s in listed]
    assert not set(types) - set(EVENT_TYPES), f"{service} subscribes to types not in the registry"
    assert len(types) == len(set(types)), f"{service} subscribes to a type twice"
    for subscription in listed:
        registered = EVENT_TYPES[subscription.event_type]
        assert subscription.exchange == registered.exchange
        assert issubclass(subscription.data_model, registered.data)


def test_metrics_counts_or_explicitly_ignores_every_return_type():
    """Covering a `return.*` type means: metrics subscribes to it, or IGNORED names it with a reason."""
    counted = {s.event_type: s for s in metrics.SUBSCRIPTIONS}
    for name, registered in EVENT_TYPES.items():
        if name.startswith("return."):
            assert name in counted or name in metrics.IGNORED, f"metrics neither counts nor ignores {name}"
        if registered.data is Return and name in counted:
            assert counted[name].handler is metrics.return_changed, name
    assert set(metrics.IGNORED) <= set(EVENT_TYPES), "IGNORED names a type the registry lacks"
    assert not set(metrics.IGNORED) & set(counted), "a type is both counted and ignored"
    assert all(reason for reason in metrics.IGNORED.values())


def test_metrics_refuses_a_kind_of_data_it_neither_counts_nor_ignores():
    class Voucher(BaseModel):
        code: str

    with pytest.raises(LookupError, match="COUNTED or IGNORED"):
        metrics._subscription(EventType("voucher.issued", Voucher, "refunds", "Voucher issued", "A voucher."))
