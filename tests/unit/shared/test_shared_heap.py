"""shared.heap: a service freezes its start-up heap once and collects young objects less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared import heap


@pytest.fixture
def fresh_collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The collector as this test process had it, before and after: no frozen objects, its thresholds."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    monkeypatch.setattr(heap, "_settled", False)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_settle_freezes_the_start_up_heap_and_raises_the_young_threshold(fresh_collector: None) -> None:
    _, middle, full = gc.get_threshold()
    survivor = {"started": [1, 2, 3]}  # a container alive at start-up
    heap.settle()
    assert gc.get_freeze_count() > 0
    assert gc.is_tracked(survivor) and not any(o is survivor for o in gc.get_objects())  # frozen: in no generation
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, middle, full)


def test_settle_happens_once_per_process(fresh_collector: None) -> None:
    heap.settle()
    frozen = gc.get_freeze_count()
    later = [[n] for n in range(1000)]  # what a running service allocates afterwards stays collectable
    heap.settle()
    # Nothing new is frozen (frozen objects may still be freed by reference counting meanwhile).
    assert gc.get_freeze_count() <= frozen
    assert any(item is later[0] for item in gc.get_objects())
