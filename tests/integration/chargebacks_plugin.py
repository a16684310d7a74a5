"""The chargeback tests' fixtures, as a pytest plugin (`pytest_plugins`): the `chargeback.*` the service publishes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import pytest

from tests.integration.disputes_chargebacks_support import Captured, capture_chargebacks


@pytest.fixture
async def published(amqp: aio_pika.abc.AbstractRobustConnection, exchange: str) -> AsyncIterator[Captured]:
    """The `chargeback.*` events published during the test."""
    async with capture_chargebacks(amqp, exchange) as captured:
        yield captured
