"""The queues a service declares, for the tests that delete them after running it."""

from __future__ import annotations

from collections.abc import Iterable

from services.notifications.webhooks.bindings import queue_name as webhooks_queue
from shared.queues import QueueNames


def service_queues(base: str, retry_delays_ms: Iterable[int]) -> list[str]:
    """Every queue of the service whose queues are named `base` (`<prefix><service>`): its bus's
    inbox, retry and dead queues, and for notifications its webhooks queue. A quorum queue left on
    the broker keeps three of its file handles for good."""
    names = QueueNames(base, tuple(retry_delays_ms)).all
    if base.endswith("notifications"):
        names.append(webhooks_queue(base))
    return names
