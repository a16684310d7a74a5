"""Calling Stripe through its official SDK: one client setup, and one reading of its errors as
"try again later" (`GatewayUnavailable`) or "refused for good" (`GatewayDeclined`)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import stripe

T = TypeVar("T")
_RETRYABLE_STATUS = frozenset({409, 429})  # 409: the same idempotency key is still being processed


class GatewayUnavailable(Exception):
    """Timeout, connection error, 5xx or rate limit: the same call (same key) may succeed later."""


class GatewayDeclined(Exception):
    """The gateway refused the call (4xx): calling again with the same input won't help."""


class StripeCaller:
    """A Stripe client whose calls fail only as GatewayUnavailable or GatewayDeclined."""

    def __init__(self, api_key: str, api_base: str, timeout_s: float) -> None:
        self._http = stripe.HTTPXClient(timeout=timeout_s)
        # The SDK's own retries are off: the calling service owns the retry budget, and a failed
        # call stays recorded and is retried with the same idempotency key.
        self._client = stripe.StripeClient(
            api_key, base_addresses={"api": api_base}, max_network_retries=0, http_client=self._http
        )

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except stripe.APIConnectionError as exc:
            raise GatewayUnavailable(f"stripe: connection failed ({type(exc).__name__})") from exc
        except stripe.StripeError as exc:
            status = exc.http_status
            if status is None or status >= 500 or status in _RETRYABLE_STATUS:
                raise GatewayUnavailable(f"stripe: HTTP {status}") from exc
            raise GatewayDeclined(f"stripe: HTTP {status} {exc.code or ''}".strip()) from exc

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]  # unannotated in the SDK
