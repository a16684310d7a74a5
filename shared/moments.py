"""Moments a client sends in a query or a body: converted to UTC and kept where MongoDB's dates
(and datetime's arithmetic) can hold them, else a validation error naming the field, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

# Nothing on the platform predates 1970, and date arithmetic (a default period's start, UTC offsets)
# must stay clear of datetime's years 1 and 9999.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
OUT_OF_RANGE = f"must be between {EARLIEST:%Y-%m-%dT%H:%M:%SZ} and {LATEST:%Y-%m-%dT%H:%M:%SZ}"


def in_range(value: datetime) -> datetime | None:
    """`value` in UTC (an aware one; a naive one is read as UTC), or None when out of range."""
    try:
        moment = value.astimezone(UTC) if value.utcoffset() is not None else value.replace(tzinfo=UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return None
    return moment if EARLIEST <= moment <= LATEST else None


def utc_moment(value: datetime) -> datetime:
    moment = in_range(value)
    if moment is None:
        raise ValueError(OUT_OF_RANGE)
    return moment


# A query or body moment: a naive one is read as UTC.
UtcMoment = Annotated[datetime, AfterValidator(utc_moment)]
