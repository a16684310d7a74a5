"""Moments from clients: converted to UTC, refused by name when MongoDB could not store them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from services.notifications.webhooks.models import WebhookReplayRequest
from shared.events import CloudEvent
from shared.moments import in_range, utc_moment

EAST = timezone(timedelta(hours=1))


def test_a_moment_is_read_in_utc_and_a_naive_one_as_utc():
    assert utc_moment(datetime(2025, 3, 1, 1, tzinfo=EAST)) == datetime(2025, 3, 1, tzinfo=UTC)
    assert utc_moment(datetime.fromisoformat("2025-03-01T00:00:00")) == datetime(2025, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "moment",
    [datetime(1, 1, 1, tzinfo=EAST), datetime(1969, 12, 31, 23, 59, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)],
)
def test_moments_out_of_range_are_refused(moment):
    assert in_range(moment) is None
    with pytest.raises(ValueError, match="must be between 1970"):
        utc_moment(moment)


def test_a_replay_range_out_of_range_is_a_validation_error():
    with pytest.raises(ValidationError, match="must be between 1970"):
        WebhookReplayRequest(since=datetime(1, 1, 1, tzinfo=EAST), until=datetime(2025, 1, 1, tzinfo=UTC))


def test_an_event_time_out_of_range_is_a_validation_error_not_an_overflow():
    envelope = {
        "id": "3f1c2b4e-1111-4222-8333-944455556666",
        "source": "/services/returns",
        "type": "return.created",
        "subject": "r",
        "sequence": 1,
        "data": {},
    }
    assert CloudEvent.model_validate(envelope | {"time": "2025-03-01T01:00:00+01:00"}).time == datetime(
        2025, 3, 1, tzinfo=UTC
    )
    with pytest.raises(ValidationError, match="must be between 1970"):
        CloudEvent.model_validate(envelope | {"time": "0001-01-01T00:00:00+01:00"})
