"""The machine's ceilings, measured in the same run: bare aio-pika and bare motor loops.

Every figure of the lifecycle run is read against these: what the broker and the MongoDB-wire
server manage with no application code at all, on the same servers, at the same moment.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import aio_pika
from motor.motor_asyncio import AsyncIOMotorClient


def _payload(size: int) -> bytes:
    return (b'{"pad":"' + os.urandom(size // 2).hex().encode())[: size - 2] + b'"}'


async def amqp_ceiling(
    amqp_url: str, queue_name: str, *, messages: int = 20_000, size: int = 2048, window: int = 256, prefetch: int = 32
) -> dict[str, Any]:
    """Confirmed persistent publishes into a scratch quorum queue, then consume-and-ack them all."""
    connection = await aio_pika.connect_robust(amqp_url, client_properties={"connection_name": "bench-ceiling"})
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "quorum"})
        await queue.purge()
        body = _payload(size)
        slots = asyncio.Semaphore(window)

        async def publish_one(i: int) -> None:
            async with slots:
                await channel.default_exchange.publish(
                    aio_pika.Message(body, message_id=str(i), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue_name,
                )

        began = time.perf_counter()
        await asyncio.gather(*(publish_one(i) for i in range(messages)))
        publish_s = time.perf_counter() - began

        consumer = await connection.channel()
        await consumer.set_qos(prefetch_count=prefetch)
        cqueue = await consumer.declare_queue(queue_name, passive=True)
        done = asyncio.Event()
        seen = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal seen
            await message.ack()
            seen += 1
            if seen >= messages:
                done.set()

        began = time.perf_counter()
        tag = await cqueue.consume(on_message)
        await asyncio.wait_for(done.wait(), timeout=max(60.0, messages / 500))
        consume_s = time.perf_counter() - began
        await cqueue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
    return {
        "messages": messages,
        "bytes": size,
        "publish_window": window,
        "prefetch": prefetch,
        "publish_confirmed_per_s": round(messages / publish_s),
        "consume_ack_per_s": round(messages / consume_s),
    }


async def mongo_ceiling(
    mongodb_url: str, database: str, *, operations: int = 5_000, size: int = 2048, concurrency: int = 16
) -> dict[str, Any]:
    """insert_one, find_one and update_one by _id, `concurrency` at a time, on a scratch database;
    then update_one conditional on _id and a field, as the services' versioned writes are."""
    client: AsyncIOMotorClient = AsyncIOMotorClient(mongodb_url, tz_aware=True, serverSelectionTimeoutMS=5000)
    collection = client[database]["ceiling"]
    pad = _payload(size).decode()
    slots = asyncio.Semaphore(concurrency)

    async def timed(op, count: int = operations) -> float:
        async def one(i: int) -> None:
            async with slots:
                await op(i)

        began = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return count / (time.perf_counter() - began)

    try:
        await collection.drop()
        insert = await timed(lambda i: collection.insert_one({"_id": f"d{i}", "n": 0, "pad": pad}))
        find = await timed(lambda i: collection.find_one({"_id": f"d{(i * 7919) % operations}"}))
        update = await timed(lambda i: collection.update_one({"_id": f"d{i}"}, {"$inc": {"n": 1}}))
        # What the services' optimistic-concurrency writes look like: _id plus the expected version.
        # mongo-java-server serves only a filter of exactly {_id} from the _id index; this one scans.
        conditional_count = max(50, operations // 10)
        conditional = await timed(
            lambda i: collection.update_one({"_id": f"d{i}", "n": 1}, {"$inc": {"n": 1}}), conditional_count
        )
        await client.drop_database(database)
    finally:
        client.close()
    return {
        "operations": operations,
        "bytes": size,
        "concurrency": concurrency,
        "documents": operations,
        "insert_one_per_s": round(insert),
        "find_one_per_s": round(find),
        "update_one_per_s": round(update),
        "conditional_update_one_per_s": round(conditional, 1),
        "conditional_operations": conditional_count,
    }
