"""Who may read which figures, and how bad input is answered (problem+json naming the field)."""

from __future__ import annotations

import pytest

from shared.clock import FixedClock
from tests.integration.proxy import FlakyProxy
from tests.unit.metrics.builders import at

pytestmark = pytest.mark.integration
WEEK = {"from": at(0).isoformat(), "to": at(7).isoformat()}


@pytest.fixture
async def metrics(start_metrics):
    return await start_metrics(FixedClock(at(10)))


@pytest.mark.parametrize(
    "path, role, sub, status",
    [
        ("/v1/metrics/sellers/s-1", "seller", "s-1", 200),
        ("/v1/metrics/sellers/s-1", "seller", "s-2", 404),  # someone else's figures: as if they did not exist
        ("/v1/metrics/sellers/s-1", "agent", "a-1", 200),
        ("/v1/metrics/sellers/s-1", "buyer", "b-1", 403),
        ("/v1/metrics/sellers/s-1/order-defects", "seller", "s-1", 200),
        ("/v1/metrics/sellers/s-1/order-defects", "seller", "s-2", 404),
        ("/v1/metrics/sellers/s-1/order-defects", "agent", "a-1", 200),
        ("/v1/metrics/sellers/s-1/order-defects", "service", "disputes", 200),
        ("/v1/metrics/sellers/s-1/order-defects", "buyer", "b-1", 403),
        ("/v1/metrics/buyers/b-1", "buyer", "b-1", 200),
        ("/v1/metrics/buyers/b-1", "buyer", "b-2", 404),
        ("/v1/metrics/buyers/b-1", "seller", "s-1", 403),
        ("/v1/metrics/buyers/b-1", "service", "returns", 200),
        ("/v1/metrics/overview", "agent", "a-1", 200),
        ("/v1/metrics/overview", "seller", "s-1", 403),
    ],
)
async def test_access(metrics, path, role, sub, status):
    response = await metrics.http.get(path, params=WEEK if "buyers" not in path else {}, headers=metrics.as_(role, sub))
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.headers["content-type"] == "application/problem+json"


async def test_no_token_is_401(metrics):
    response = await metrics.http.get("/v1/metrics/overview")
    assert response.status_code == 401 and response.json()["status"] == 401


@pytest.mark.parametrize(
    "params, field",
    [
        ({"from": at(7).isoformat(), "to": at(0).isoformat()}, "from"),
        ({"from": "2025-03-01T00:00:00", "to": at(7).isoformat()}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"to": at(0).isoformat(), "from": at(-400).isoformat()}, "from"),
    ],
)
async def test_a_bad_period_names_the_field(metrics, params, field):
    response = await metrics.http.get("/v1/metrics/sellers/s-1", params=params, headers=metrics.as_("agent", "a"))
    assert response.status_code == 422, response.text
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in body["errors"]] == [field]


async def test_an_empty_period_has_zero_counts_and_no_rates(metrics):
    report = await metrics.get("/v1/metrics/sellers/s-none", **WEEK)
    assert report["period"] == {"from": "2025-03-03T09:00:00Z", "to": "2025-03-10T09:00:00Z"}
    assert report["counts"]["requests"] == 0 and report["dissatisfaction"]["rate"] is None
    assert report["top_reasons"] == [] and report["refunded"] == []


async def test_prometheus_and_health(metrics, wait_until):
    assert (await metrics.http.get("/readyz")).status_code == 200
    scrape = (await metrics.http.get("/metrics")).text
    assert "metrics_events_total" in scrape and "metrics_report_seconds" in scrape


@pytest.mark.parametrize(
    "params, field",
    [
        ({"to": "0001-01-02T00:00:00Z"}, "to"),  # the default `from` would be before year 1
        ({"from": "0001-01-01T00:00:00+01:00", "to": at(7).isoformat()}, "from"),  # before year 1 in UTC
        ({"from": "1969-12-01T00:00:00Z", "to": "1970-01-02T00:00:00Z"}, "from"),
        ({"to": "9999-12-31T23:59:59Z"}, "to"),
        ({"from": "9999-12-31T00:00:00-14:00"}, "from"),  # after year 9999 in UTC
        ({"from": at(7).isoformat(), "to": at(0).isoformat()}, "from"),
    ],
)
async def test_a_period_near_the_ends_of_the_calendar_is_a_422_naming_the_field(metrics, params, field):
    response = await metrics.http.get("/v1/metrics/overview", params=params, headers=metrics.as_("agent", "a"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_not_ready_while_the_broker_is_unreachable(start_metrics, amqp_url, wait_until):
    proxy = FlakyProxy.for_url(amqp_url)
    metrics = await start_metrics(FixedClock(at(10)), amqp_url=await proxy.url(amqp_url))
    try:

        async def amqp_check() -> str:
            return (await metrics.http.get("/readyz")).json()["checks"]["amqp"]

        assert await amqp_check() == "ok"
        proxy.refuse()
        await wait_until(lambda: _is(amqp_check(), "failing"), message="/readyz notices the broker is gone")
        proxy.resume()
        await wait_until(lambda: _is(amqp_check(), "ok"), timeout=15, message="ready again once reconnected")
    finally:
        proxy.resume()
        await metrics.stop()
        await proxy.close()


async def _is(value, expected) -> bool:
    return await value == expected
