"""Every service's /readyz tells the broker's and the store's reachability now, not as at start-up.

Each service runs in-process against the real servers, both reached through a TCP proxy the test
cuts: /readyz answers 503 naming the failing checks while they are away, and 200 once they are back.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.integration.module_isolation import cleanup, isolated_settings
from tests.integration.proxy import FlakyProxy

SERVICES = ("returns", "refunds", "notifications", "metrics", "disputes")
JWT_SECRET = "readiness-integration-secret-" + "r" * 40


async def _mongo_behind(mongodb_url: str, proxy: FlakyProxy) -> str:
    """`mongodb_url` through the proxy, with short server selection so a ping fails inside /readyz's bound."""
    port = await proxy.start()
    query = "directConnection=true&serverSelectionTimeoutMS=1500&heartbeatFrequencyMS=500"
    return urlunsplit(urlsplit(mongodb_url)._replace(netloc=f"127.0.0.1:{port}", path="/", query=query))


@pytest.mark.parametrize("service", SERVICES)
async def test_readyz_follows_the_broker_and_the_store(
    service: str, request: pytest.FixtureRequest, amqp_url: str, mongodb_url: str, mongo_client: Any, wait_until
) -> None:
    store_at = urlsplit(mongodb_url)
    mongo_proxy = FlakyProxy(store_at.hostname or "127.0.0.1", store_at.port or 27017)
    amqp_proxy = FlakyProxy.for_url(amqp_url)
    values = isolated_settings(request, await amqp_proxy.url(amqp_url), mongodb_url, JWT_SECRET)
    values["mongodb_url"] = await _mongo_behind(mongodb_url, mongo_proxy)
    app_module = importlib.import_module(f"services.{service}.app")
    settings_module = importlib.import_module(f"services.{service}.settings")
    settings = settings_module.Settings(**values)
    app = app_module.create_app(settings)
    try:
        async with (
            LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager,
            httpx.AsyncClient(transport=httpx.ASGITransport(manager.app), base_url="http://t") as client,
        ):

            async def checks() -> tuple[int, dict[str, str]]:
                response = await client.get("/readyz")
                return response.status_code, response.json().get("checks", {})

            assert await checks() == (200, {"mongodb": "ok", "amqp": "ok"})
            scraped = (await client.get("/metrics")).text  # the gauges read on scrape, for this service
            for gauge in ("outbox_pending", "outbox_oldest_pending_age_seconds", "dead_letter_depth"):
                assert f'returns_platform_{gauge}{{service="{settings.service_name}"}} 0.0' in scraped, gauge
            if service == "disputes":
                assert f'returns_platform_claims_open_past_deadline{{service="{service}"}} 0.0' in scraped

            mongo_proxy.refuse()  # the store goes away
            await wait_until(lambda: _is(checks(), (503, {"mongodb": "failing", "amqp": "ok"})), timeout=10)
            amqp_proxy.refuse()  # and the broker
            await wait_until(lambda: _is(checks(), (503, {"mongodb": "failing", "amqp": "failing"})), timeout=10)
            response = await client.get("/readyz")
            assert response.headers["content-type"].startswith("application/problem+json")

            mongo_proxy.resume()
            amqp_proxy.resume()
            await wait_until(lambda: _is(checks(), (200, {"mongodb": "ok", "amqp": "ok"})), timeout=20)
    finally:
        await amqp_proxy.close()
        await mongo_proxy.close()
        await cleanup(settings.model_copy(update={"amqp_url": amqp_url}), mongo_client)  # not the proxy's


async def _is(value: Any, expected: Any) -> bool:
    return await value == expected
