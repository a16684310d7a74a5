"""The period of a metrics query: offsets required, bounds far from datetime's years 1 and 9999."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from services.metrics.api import period_of
from shared.clock import FixedClock
from shared.http import Unprocessable
from shared.moments import EARLIEST, LATEST

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
REPORTS = SimpleNamespace(settings=SimpleNamespace(default_period_days=30, max_period_days=366), clock=FixedClock(NOW))


def parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@pytest.mark.parametrize(
    "start, end, field",
    [
        (None, "0001-01-02T00:00:00+00:00", "to"),
        ("0001-01-01T00:00:00+01:00", None, "from"),
        ("1969-12-31T23:59:59+00:00", "1970-01-02T00:00:00+00:00", "from"),
        (None, "9999-12-31T23:59:59+00:00", "to"),
        ("9999-12-31T00:00:00-14:00", None, "from"),
        ("2025-03-01T00:00:00", None, "from"),
        ("2025-03-02T00:00:00+00:00", "2025-03-01T00:00:00+00:00", "from"),
    ],
)
def test_a_bad_period_is_a_422_naming_the_field(start, end, field):
    with pytest.raises(Unprocessable) as caught:
        period_of(parse(start), parse(end), REPORTS)
    assert [e["field"] for e in caught.value.extra["errors"]] == [field]


def test_the_bounds_themselves_and_the_default_period():
    assert period_of(EARLIEST, EARLIEST + timedelta(days=1), REPORTS).start == EARLIEST
    assert period_of(LATEST - timedelta(days=1), LATEST, REPORTS).end == LATEST
    assert period_of(None, EARLIEST + timedelta(days=1), REPORTS).start == EARLIEST - timedelta(days=29)
    default = period_of(None, None, REPORTS)
    assert (default.start, default.end) == (NOW - timedelta(days=30), NOW)
