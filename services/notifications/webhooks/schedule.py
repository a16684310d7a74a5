"""When a failed delivery is tried again: growing delays, the last repeating, until the window ends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta


def next_attempt(
    first_attempt_at: datetime, attempts: int, now: datetime, delays_s: Sequence[float], window_s: float
) -> datetime | None:
    """The time of the next attempt after `attempts` failed ones (the last at `now`); None once the
    retry window (`window_s` after the first attempt) would be passed: the delivery has failed."""
    if not delays_s:
        return None
    delay = delays_s[min(max(attempts, 1), len(delays_s)) - 1]
    due = now + timedelta(seconds=delay)
    if due > first_attempt_at + timedelta(seconds=window_s):
        return None
    return due
