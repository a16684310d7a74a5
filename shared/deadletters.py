"""Operators' view of a service's dead-letter queue: list parked messages, replay them.

Listing takes messages with basic.get and returns them unacked, so nothing is lost; the dead queue
is a classic queue because classic queues put a returned message back in its place and never
count (and eventually drop) returns the way quorum queues' delivery limit does.

    python -m shared.deadletters list   --service returns [--limit 50]
    python -m shared.deadletters replay --service returns [--id EVENT_ID ...]
AMQP_URL and QUEUE_PREFIX come from the environment.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from shared.bus import EventBus, forwarded_headers, header_int

log = logging.getLogger(__name__)

REPLAY_BATCH_LIMIT = 10_000  # messages held unacked at once by one replay call
_RESET = ("x-attempt", "x-last-error", "x-error", "x-attempts", "x-failed-at")


class DeadLetter(BaseModel):
    id: str
    type: str | None
    error: str
    attempts: int
    failed_at: datetime | None
    original_routing_key: str | None = None
    body: str


class DeadLetterList(BaseModel):
    items: list[DeadLetter]


class ReplayRequest(BaseModel):
    ids: list[str] | None = None


class ReplayResult(BaseModel):
    replayed: int


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def dead_letter(message: AbstractIncomingMessage) -> DeadLetter:
    headers = message.headers or {}
    error = _text(headers.get("x-error"))
    if error is None:  # dead-lettered by the broker itself (delivery limit), not by the bus
        deaths = headers.get("x-death") or [{}]
        error = f"dead-lettered by broker: {_text(deaths[0].get('reason')) or 'unknown'}"
    failed_at = _text(headers.get("x-failed-at"))
    return DeadLetter(
        id=message.message_id or "", type=message.type, error=error,
        attempts=header_int(headers, "x-attempts"),
        failed_at=datetime.fromisoformat(failed_at) if failed_at else None,
        original_routing_key=_text(headers.get("x-original-routing-key")),
        body=message.body.decode(errors="replace"))


async def list_dead(bus: EventBus, limit: int = 100) -> list[DeadLetter]:
    """Up to `limit` parked messages, oldest first; they stay in the dead queue."""
    async with bus.connection.channel(publisher_confirms=False) as channel:
        queue = await channel.declare_queue(bus.names.dead, passive=True, robust=False)
        held = []
        while len(held) < limit and (message := await queue.get(no_ack=False, fail=False)):
            held.append(message)
        for message in held:
            await message.nack(requeue=True)
    return [dead_letter(m) for m in held]


async def replay_dead(bus: EventBus, ids: list[str] | None = None) -> int:
    """Move the parked messages with these ids (all when None) back to the service's main queue,
    with their attempts reset. Returns how many were moved."""
    wanted = None if ids is None else set(ids)
    moved = 0
    async with bus.connection.channel(publisher_confirms=True, on_return_raises=True) as channel:
        queue = await channel.declare_queue(bus.names.dead, passive=True, robust=False)
        skipped = []
        # Skipped messages stay unacked until the end, so get() never hands them out twice.
        while len(skipped) < REPLAY_BATCH_LIMIT and (message := await queue.get(no_ack=False, fail=False)):
            if wanted is not None and message.message_id not in wanted:
                skipped.append(message)
                continue
            headers = {k: v for k, v in forwarded_headers(message.headers).items() if k not in _RESET}
            headers["x-replayed-at"] = bus.clock.now().isoformat()
            await channel.default_exchange.publish(aio_pika.Message(
                message.body, headers=headers, content_type=message.content_type,
                message_id=message.message_id, type=message.type, timestamp=message.timestamp,
                app_id=message.app_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ), routing_key=bus.names.main, mandatory=True)
            await message.ack()  # only after the broker confirmed the copy
            moved += 1
            log.info("dead letter replayed", extra={"event_id": message.message_id,
                                                    "event_type": message.type, "queue": bus.names.main})
        for message in skipped:
            await message.nack(requeue=True)
    return moved


def dead_letter_router(bus_getter: Callable[[], EventBus], require_agent: Callable[..., Any]) -> APIRouter:
    """Admin endpoints; `require_agent` is the app's dependency that admits agents only."""
    # Dependencies as defaults: annotations are strings here and FastAPI can't see local names.
    router = APIRouter(prefix="/v1/admin/dead-letters", tags=["admin"])

    @router.get("", response_model=DeadLetterList)
    async def list_dead_letters(limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                                _: Any = Depends(require_agent)) -> DeadLetterList:
        return DeadLetterList(items=await list_dead(bus_getter(), limit))

    @router.post("/replay", response_model=ReplayResult)
    async def replay_dead_letters(request: ReplayRequest, agent: Any = Depends(require_agent)) -> ReplayResult:
        replayed = await replay_dead(bus_getter(), request.ids)
        log.info("dead letters replayed by agent", extra={"actor": getattr(agent, "id", None) or str(agent),
                                                         "ids": request.ids, "replayed": replayed})
        return ReplayResult(replayed=replayed)

    return router


async def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.deadletters", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("--service", required=True)
    parser.add_argument("--id", dest="ids", action="append", help="replay only this id (repeatable)")
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args(argv)
    url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    bus = EventBus(url, args.service, queue_name=os.environ.get("QUEUE_PREFIX", "") + args.service)
    await bus.connect()
    try:
        if args.command == "list":
            for item in await list_dead(bus, args.limit):
                print(item.model_dump_json())
        else:
            print(json.dumps({"replayed": await replay_dead(bus, args.ids)}))
    finally:
        await bus.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(_main()))
