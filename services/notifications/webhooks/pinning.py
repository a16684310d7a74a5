"""Deliveries connect only to addresses checked at connection time (DNS rebinding stays refused).

A host that resolved to a public address at registration may resolve to a private one later, or
even between a check and the connection (a zero TTL). So the HTTP client's network backend resolves
the host itself, refuses the connection when any address is private, loopback, link-local or
reserved (unless WEBHOOKS_ALLOW_PRIVATE), and connects to exactly those addresses: the check and the
connection use one resolution. TLS still verifies the certificate against the URL's host name.
"""

from __future__ import annotations

import ipaddress
import logging
import typing
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import httpx

from services.notifications.webhooks.urls import REFUSED_ADDRESS, BadUrl, refused_addresses, resolve

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Awaitable[list[Address]]]


class RefusedHost(httpcore.ConnectError):
    """No connection made: the host resolves to an address deliveries may not reach."""


class PinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(
        self, *, allow_private: bool, resolver: Resolver = resolve, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.allow_private, self.resolver = allow_private, resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def addresses(self, host: str) -> list[Address]:
        """The addresses to connect to; RefusedHost when the host may not be reached."""
        try:
            addresses = await self.resolver(host)
        except BadUrl as exc:
            raise RefusedHost(f"URL refused: {exc}; no request sent") from None
        except Exception as exc:  # noqa: BLE001 - a resolver failing otherwise is a refusal too, named by type
            reason = f"its host did not resolve ({type(exc).__name__})"
            raise RefusedHost(f"URL refused: {reason}; no request sent") from None
        refused = [] if self.allow_private else refused_addresses(addresses)
        if refused:
            log.warning("webhook delivery refused", extra={"host": host, "address": str(refused[0])})
            raise RefusedHost(f"URL refused: {REFUSED_ADDRESS}; no request sent")
        if not addresses:
            raise RefusedHost("URL refused: its host resolves to nothing; no request sent")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        *others, last = await self.addresses(host)
        for address in others:  # each vetted address in turn, as a connect by host name does
            try:
                return await self.inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError:
                continue
        return await self.inner.connect_tcp(str(last), port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedHost("deliveries never use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool on a PinnedBackend (no proxies, no redirects)."""

    def __init__(self, backend: PinnedBackend, **pool: typing.Any) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=backend, **pool
        )


def pinned_client(*, allow_private: bool, timeout: float, resolver: Resolver = resolve) -> httpx.AsyncClient:
    # trust_env=False: a proxy from the environment would resolve the host itself, unchecked.
    transport = PinnedTransport(PinnedBackend(allow_private=allow_private, resolver=resolver))
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)
