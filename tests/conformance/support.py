"""What the store-conformance modules share: a fixed time, how hard the races are run, helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
RACE_ROUNDS = 10
RACERS = 20


def ms(value: datetime) -> datetime:
    """BSON datetimes hold milliseconds: what a stored datetime reads back as."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


async def ids(cursor: Any) -> list[Any]:
    """The `_id`s a cursor finds, sorted."""
    return sorted([doc["_id"] async for doc in cursor])
