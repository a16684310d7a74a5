"""Deliveries and DNS rebinding: the address checked is the address connected to (injected resolver)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable
from datetime import UTC, datetime

import httpcore
import httpx
import pytest

from services.notifications.settings import Settings
from services.notifications.webhooks.delivery import DeliveryWorker
from services.notifications.webhooks.pinning import Address, PinnedBackend, PinnedTransport, RefusedHost, Resolver
from shared.clock import FixedClock

PUBLIC, PRIVATE = "93.184.215.14", "10.0.0.7"
URL = "https://hooks.example.com/returns"


def resolver(*answers: str) -> Resolver:
    async def resolve(host: str) -> list[Address]:
        return [ipaddress.ip_address(a) for a in answers]

    return resolve


class Network(httpcore.AsyncNetworkBackend):
    """Records where connections go; connects nowhere."""

    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connected.append((host, port))
        raise httpcore.ConnectError("test network: refused")


async def test_a_host_resolving_to_a_private_address_is_never_connected_to() -> None:
    network = Network()
    backend = PinnedBackend(allow_private=False, resolver=resolver(PUBLIC, PRIVATE), inner=network)
    with pytest.raises(RefusedHost, match=r"not a public one\); no request sent"):
        await backend.connect_tcp("hooks.example.com", 443)
    assert network.connected == []


async def test_connections_go_to_the_checked_addresses_not_to_a_new_lookup() -> None:
    network = Network()
    backend = PinnedBackend(allow_private=False, resolver=resolver(PUBLIC, "93.184.215.15"), inner=network)
    with pytest.raises(httpcore.ConnectError, match="test network"):
        await backend.connect_tcp("hooks.example.com", 443)
    assert network.connected == [(PUBLIC, 443), ("93.184.215.15", 443)]  # each vetted address in turn


async def test_private_addresses_allowed_by_setting() -> None:
    network = Network()
    backend = PinnedBackend(allow_private=True, resolver=resolver("127.0.0.1"), inner=network)
    with pytest.raises(httpcore.ConnectError, match="test network"):
        await backend.connect_tcp("localhost", 8080)
    assert network.connected == [("127.0.0.1", 8080)]


async def test_an_http_client_on_the_pinned_transport_sends_nothing_to_a_rebound_host() -> None:
    network = Network()
    transport = PinnedTransport(PinnedBackend(allow_private=False, resolver=resolver(PRIVATE), inner=network))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError, match="no request sent"):
            await client.post(URL, content=b"{}")
    assert network.connected == []


async def test_a_delivery_to_a_host_now_resolving_privately_is_a_failed_attempt_with_the_reason() -> None:
    code, error, duration_ms = await _post_once(URL, resolver(PRIVATE))
    assert code is None and duration_ms == 0
    reason = "its host resolves to an address deliveries may not reach (not a public one)"
    assert error == f"URL refused: {reason}; no request sent"  # the address itself only in the service's log


def failing_resolver(exc: Exception) -> Resolver:
    async def resolve(host: str) -> list[Address]:
        raise exc

    return resolve


async def _post_once(
    url: str, resolve: Resolver, settings: Settings | None = None, http: httpx.AsyncClient | None = None
) -> tuple[int | None, str | None, int]:
    """One attempt of a delivery worker (no store needed), through `http` or the client start() makes."""
    worker = DeliveryWorker(None, settings or Settings(), FixedClock(datetime(2026, 3, 1, tzinfo=UTC)), resolve)  # type: ignore[arg-type]
    worker.http = http or worker.client()
    endpoint = {"_id": "whe_1", "url": url, "secrets": [{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]}
    try:
        return await worker._post(endpoint, {"_id": "whe_1:e1", "event_id": "e1", "payload": "{}"}, datetime.now(UTC))
    finally:
        await worker.http.aclose()


async def test_a_resolver_failing_otherwise_is_a_refusal_not_an_escaping_error() -> None:
    code, error, duration_ms = await _post_once(URL, failing_resolver(OSError("resolver down")))
    assert code is None and duration_ms == 0
    assert error == "URL refused: its host did not resolve (OSError); no request sent"


async def test_a_url_httpx_refuses_is_a_failed_attempt_naming_only_the_error_type() -> None:
    # urlsplit accepts the control character; httpx raises InvalidURL, which is no httpx.HTTPError.
    code, error, _ = await _post_once("https://hooks.example.com/secret-token-\x01", resolver(PUBLIC))
    assert code is None
    assert error == "InvalidURL: the attempt failed before a response"  # not the URL (it may carry secrets)


async def test_an_attempt_has_one_time_budget_whatever_the_receiver_trickles() -> None:
    """httpx's timeout is per connect, read or write; a receiver answering slowly must not hold the
    delivery's claim past its lease: the whole attempt gets WEBHOOKS_TIMEOUT_S."""

    async def receiver(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)  # a hundred times the budget (httpx's own timeouts do not apply here)
        return httpx.Response(200)

    slow = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    code, error, _ = await _post_once(URL, resolver(PUBLIC), Settings(webhooks_timeout_s=0.05), slow)
    assert (code, error) == (None, "no answer within 0.05 s")
