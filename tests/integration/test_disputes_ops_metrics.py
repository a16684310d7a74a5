"""Disputes' operational metrics: claim transitions, and open claims past their deadline (a gauge
counted on scrape with the deadline job's indexed query, so it shows a job that stopped granting)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from shared import ops_metrics

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.claims_harness"]  # its fixtures: the service, its API, a tap, the clock

SETTINGS = {
    "jobs_enabled": False,
    "claim_response_hours": 60 / 3600,
    "claim_reminder_hours": 20 / 3600,
}  # no job: deadlines pass ungranted


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_transitions_and_claims_past_deadline(claims_api, disputes_clock, disputes_app, disputes_settings):
    api, service = claims_api, disputes_settings.service_name
    filed = sample("returns_platform_transitions_total", type="claim.filed")
    claims = [await api.file(await api.deliver(), 1000 + n) for n in range(3)]
    assert sample("returns_platform_transitions_total", type="claim.filed") == filed + 3

    await ops_metrics.refresh(max_age=0)
    assert sample("returns_platform_claims_open_past_deadline", service=service) == 0
    disputes_clock.advance(timedelta(seconds=61))  # past the 60 s deadline, nobody grants them
    await ops_metrics.refresh(max_age=0)
    assert sample("returns_platform_claims_open_past_deadline", service=service) == len(claims)
    scraped = (await api.client.get("/metrics")).text  # refreshed just now: the scrape serves it as is
    assert f'returns_platform_claims_open_past_deadline{{service="{service}"}} 3.0' in scraped
