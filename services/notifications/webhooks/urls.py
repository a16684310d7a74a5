"""What an endpoint URL may be: https (http only when allowed), a host resolving to public addresses.

Checked at registration and on every change of the URL; refused URLs answer 422 naming `url`.
Deliveries check the addresses again when they connect (pinning.py): a host may resolve elsewhere later.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from urllib.parse import urlsplit

MAX_URL_CHARS = 2048
REFUSED_ADDRESS = "its host resolves to an address deliveries may not reach (not a public one)"
log = logging.getLogger(__name__)


class BadUrl(ValueError):
    """Why the URL is refused (the problem's `reason`)."""


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # Only global unicast addresses: `is_global` also leaves out the shared address space
    # (100.64.0.0/10, carrier-grade NAT, where some clouds serve instance metadata).
    return (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def check_shape(url: str, *, allow_http: bool) -> str:
    """The URL's host, if its form is acceptable; BadUrl otherwise. No network."""
    if len(url) > MAX_URL_CHARS:
        raise BadUrl(f"longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise BadUrl(f"not a URL: {exc}") from None
    allowed = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in allowed:
        raise BadUrl("must be https" if not allow_http else "must be http or https")
    if not parts.hostname:
        raise BadUrl("has no host")
    if parts.username is not None or parts.password is not None:
        raise BadUrl("must not carry credentials")
    if parts.fragment:
        raise BadUrl("must not have a fragment")
    return parts.hostname


async def resolve(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # UnicodeError: a label IDNA cannot encode (empty, over 63 characters)
        raise BadUrl("its host does not resolve") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def refused_addresses(
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Those of `addresses` deliveries may not reach: any but global unicast ones."""
    return [a for a in addresses if _refused(a)]


async def check_url(url: str, *, allow_http: bool, allow_private: bool) -> None:
    """BadUrl unless `url` may receive deliveries (every address its host resolves to is public).
    At registration; every delivery checks again when it connects (pinning.py)."""
    host = check_shape(url, allow_http=allow_http)
    addresses = await resolve(host)
    if not allow_private:
        refused = [str(a) for a in refused_addresses(addresses)]
        if refused:
            # The address stays in the service's log: the caller learns no internal address from the answer.
            log.warning("webhook URL refused", extra={"host": host, "address": refused[0]})
            raise BadUrl(REFUSED_ADDRESS)
