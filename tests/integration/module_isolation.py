"""Settings naming a test's own database, queues and exchanges (per module or per test), and their removal."""

from __future__ import annotations

import uuid
from typing import Any

import aio_pika
import pytest

from tests.queues import service_queues


def isolated_settings(
    request: pytest.FixtureRequest, amqp_url: str, mongodb_url: str, jwt_secret: str
) -> dict[str, Any]:
    """Settings values naming this module's own database, queues and exchanges, so nobody else's
    events meet ours; fast retries and outbox polls, no jobs."""
    tag = uuid.uuid4().hex[:8]
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    prefix = f"t-{name}-{tag}."
    return dict(
        mongodb_url=mongodb_url,
        mongodb_db=f"test_{name}_{tag}",
        amqp_url=amqp_url,
        queue_prefix=prefix,
        exchange=f"{prefix}events",
        orders_exchange=f"{prefix}orders",
        jwt_secret=jwt_secret,
        retry_delays_ms=[100, 300],
        outbox_poll_ms=50,
        jobs_enabled=False,
        log_level="WARNING",
    )


async def cleanup(settings: Any, mongo_client: Any) -> None:
    """Drop the database, the service's queues and the two exchanges `isolated_settings` named."""
    await mongo_client.drop_database(settings.database_name)
    connection = await aio_pika.connect_robust(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        for name in service_queues(settings.queue_name, settings.retry_delays_ms):
            await channel.queue_delete(name)
        for exchange in (settings.exchange, settings.orders_exchange):
            await channel.exchange_delete(exchange)


def per_test_settings(
    mongodb_url: str, amqp_url: str, db: Any, exchange: str, queue_prefix: str, jwt_secret: str
) -> dict[str, Any]:
    """Settings values on the per-test database, exchange and queue prefix (tests/integration/conftest.py),
    with fast retries and outbox polls and the periodic jobs out of the way."""
    return dict(
        mongodb_url=mongodb_url,
        mongodb_db=db.name,
        amqp_url=amqp_url,
        exchange=exchange,
        orders_exchange=f"{queue_prefix}orders",
        queue_prefix=queue_prefix,
        retry_delays_ms=[100, 200],
        outbox_poll_ms=100,
        jwt_secret=jwt_secret,
        job_interval_s=3600.0,
        log_level="WARNING",
    )
