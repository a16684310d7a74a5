"""Operators' view of a service's dead-letter queue: list parked messages, replay them.

Listing takes messages with basic.get and returns them unacked, so nothing is lost; the dead queue
is a classic queue because classic queues put a returned message back in its place and never
count (and eventually drop) returns the way quorum queues' delivery limit does.

A replay sends each message back to the queue it was parked from: the one the broker names in its
`x-death` (a service's other queues, e.g. notifications' webhooks queue, dead-letter here too), else
the service's inbox (parked by the bus, or an unknown queue).

A replay works on a snapshot: the messages in the queue when it starts (at most REPLAY_LIMIT).
A message that fails again is parked behind them, so one call never meets it twice; a second copy
of a message it already replayed is removed as a duplicate. It stops at the next message when the
bus closes, on SIGTERM/SIGINT (CLI) or when its time budget (HTTP) runs out, answering
`complete: false`; what it did not reach stays parked.

    python -m shared.deadletters list   --service returns [--limit 50]
    python -m shared.deadletters replay --service returns [--id EVENT_ID ...]
AMQP_URL and QUEUE_PREFIX come from the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import signal
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import DeliveryError, PublishError
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from shared.bus import EventBus
from shared.queues import PARKED_FROM, QueueNames, forwarded_headers, header_int

log = logging.getLogger(__name__)

REPLAY_LIMIT = 10_000  # messages one replay call looks at (and may hold unacked) at most
HTTP_REPLAY_BUDGET_S = 20.0  # an HTTP replay answers within this, well inside a pod's grace period
REPLAY_ID_HEADER = "x-replay-id"  # which replay call sent a message back (travels into its re-park)
_RESET = ("x-attempt", "x-last-error", "x-error", "x-attempts", "x-failed-at", PARKED_FROM)


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
    # A misspelt field must not read as "no ids": that replays every parked message.
    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(
        default=None, max_length=REPLAY_LIMIT, description="Replay only these message ids; omit (or `{}`) for all."
    )


Outcome = Literal["replayed", "duplicate", "not_found", "skipped", "failed"]


class ReplayOutcome(BaseModel):
    id: str
    type: str | None = None
    outcome: Outcome = Field(
        description=(
            "`replayed`: back in the queue it was parked from. `duplicate`: a second copy of a message this call "
            "replayed, removed. `not_found`: an asked-for id not in the queue. `skipped`: an asked-for id "
            "the call did not reach because it stopped early. `failed`: could not be sent back; still parked."
        )
    )


class ReplayResult(BaseModel):
    replayed: int = Field(description="How many messages went back to the queue they were parked from.")
    complete: bool = Field(
        default=True,
        description=(
            "False when the call stopped before the end of its snapshot (shutdown, time budget): "
            "call again for the rest."
        ),
    )
    items: list[ReplayOutcome] = Field(default_factory=list, description="One entry per message acted on.")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def dead_letter(message: AbstractIncomingMessage) -> DeadLetter:
    headers = message.headers or {}
    error = _text(headers.get("x-error"))
    if error is None:  # dead-lettered by the broker itself (delivery limit), not by the bus
        deaths = headers.get("x-death")
        death = deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}
        error = f"dead-lettered by broker: {_text(death.get('reason')) or 'unknown'}"
    failed_at = _text(headers.get("x-failed-at"))
    return DeadLetter(
        id=message.message_id or "",
        type=message.type,
        error=error,
        attempts=header_int(headers, "x-attempts"),
        failed_at=datetime.fromisoformat(failed_at) if failed_at else None,
        original_routing_key=_text(headers.get("x-original-routing-key")),
        body=message.body.decode(errors="replace"),
    )


async def list_dead(bus: EventBus, limit: int = 100) -> list[DeadLetter]:
    """Up to `limit` parked messages, oldest first; they stay in the dead queue."""
    async with bus.connection.channel(publisher_confirms=False) as channel:
        queue = await channel.declare_queue(bus.names.dead, passive=True, robust=False)
        held: list[AbstractIncomingMessage] = []
        while len(held) < limit and (message := await queue.get(no_ack=False, fail=False)):
            held.append(message)
        for message in held:
            await message.nack(requeue=True)
    return [dead_letter(m) for m in held]


def origin_queue(headers: dict[str, Any] | None, names: QueueNames) -> str:
    """The queue a parked message came from: the queue that parked it (`x-parked-from`) or the last
    one that dead-lettered it, if that is one of this service's consuming queues (a retry queue feeds
    the inbox), else the inbox."""
    deaths = (headers or {}).get("x-death")
    death = deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}
    queue = _text((headers or {}).get(PARKED_FROM)) or _text(death.get("queue"))
    if queue is None or not queue.startswith(f"{names.base}.") or queue in names.all:
        return names.main
    return queue


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def replay_decision(
    message_id: str,
    digest: str,
    headers: dict[str, Any] | None,
    *,
    replay_id: str,
    wanted: set[str] | None,
    replayed: dict[str, str],
) -> Literal["replay", "duplicate", "keep"]:
    """What one replay call does with a message it took from the dead queue. `replayed` maps the
    ids this call already sent back to their body digests."""
    if _text((headers or {}).get(REPLAY_ID_HEADER)) == replay_id:
        return "keep"  # sent back by this very call and parked again: once per call
    if wanted is not None and message_id not in wanted:
        return "keep"
    if message_id and message_id in replayed:  # id-less messages can't be matched: each is its own
        return "duplicate" if replayed[message_id] == digest else "keep"
    return "replay"


class _Stop:
    """When a replay must stop: the bus closes, `event` is set, or the time budget is spent."""

    def __init__(self, bus: EventBus, event: asyncio.Event | None, budget_s: float | None) -> None:
        loop = asyncio.get_running_loop()
        self.bus, self.event, self.loop = bus, event, loop
        self.deadline = None if budget_s is None else loop.time() + budget_s

    def __call__(self) -> bool:
        return (
            self.bus.closing.is_set()
            or (self.event is not None and self.event.is_set())
            or (self.deadline is not None and self.loop.time() >= self.deadline)
        )


async def replay_dead(
    bus: EventBus,
    ids: list[str] | None = None,
    *,
    stop: asyncio.Event | None = None,
    budget_s: float | None = None,
    limit: int = REPLAY_LIMIT,
) -> ReplayResult:
    """Move the parked messages with these ids (all when None) that are in the dead queue now back
    to the queues they were parked from, with their attempts reset; each at most once per call."""
    ids = None if ids is None else list(dict.fromkeys(ids))
    wanted = None if ids is None else set(ids)
    replay_id = uuid.uuid4().hex
    stopping = _Stop(bus, stop, budget_s)
    replayed: dict[str, str] = {}  # id -> body digest of what this call sent back
    found: set[str] = set()
    items: list[ReplayOutcome] = []
    complete = True
    async with bus.in_flight(), bus.connection.channel(publisher_confirms=True, on_return_raises=True) as channel:
        queue = await channel.declare_queue(bus.names.dead, passive=True, robust=False)
        snapshot = min(queue.declaration_result.message_count or 0, limit)
        held: list[AbstractIncomingMessage] = []  # stay unacked until the end: get() never repeats them
        try:
            for _ in range(snapshot):
                if stopping():
                    complete = False
                    break
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                message_id, digest = message.message_id or "", _digest(message.body)
                decision = replay_decision(
                    message_id, digest, message.headers, replay_id=replay_id, wanted=wanted, replayed=replayed
                )
                if wanted is not None and message_id in wanted:
                    found.add(message_id)
                if decision == "keep":
                    held.append(message)
                elif decision == "duplicate":
                    await message.ack()
                    items.append(ReplayOutcome(id=message_id, type=message.type, outcome="duplicate"))
                elif await _send_back(channel, bus, message, replay_id):
                    replayed[message_id] = digest
                    items.append(ReplayOutcome(id=message_id, type=message.type, outcome="replayed"))
                else:
                    held.append(message)
                    items.append(ReplayOutcome(id=message_id, type=message.type, outcome="failed"))
        finally:
            for message in held:
                await message.nack(requeue=True)
    missing = "not_found" if complete else "skipped"
    items += [ReplayOutcome(id=i, outcome=missing) for i in (ids or ()) if i not in found]
    return ReplayResult(replayed=sum(item.outcome == "replayed" for item in items), complete=complete, items=items)


async def _send_back(channel: Any, bus: EventBus, message: AbstractIncomingMessage, replay_id: str) -> bool:
    """Publish a copy to the queue it came from (confirmed), then ack the parked one; False if refused."""
    target = origin_queue(message.headers, bus.names)
    headers = {k: v for k, v in forwarded_headers(message.headers).items() if k not in _RESET}
    headers |= {"x-replayed-at": bus.clock.now().isoformat(), REPLAY_ID_HEADER: replay_id}
    try:
        await channel.default_exchange.publish(
            aio_pika.Message(
                message.body,
                headers=headers,
                content_type=message.content_type,
                message_id=message.message_id,
                type=message.type,
                timestamp=message.timestamp,
                app_id=message.app_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=target,
            mandatory=True,
        )
    except (DeliveryError, PublishError):
        log.warning(
            "dead letter not replayed: the broker refused the copy",
            extra={"event_id": message.message_id, "queue": target},
        )
        return False
    await message.ack()  # only after the broker confirmed the copy
    log.info(
        "dead letter replayed",
        extra={"event_id": message.message_id, "event_type": message.type, "queue": target},
    )
    return True


def who(principal: Any) -> dict[str, Any]:
    """The caller's role and subject for a log line; never the token's other claims."""
    role = getattr(principal, "role", None)
    return {"role": getattr(role, "value", role), "subject": getattr(principal, "subject", None)}


def dead_letter_router(bus_getter: Callable[[], EventBus], require_agent: Callable[..., Any]) -> APIRouter:
    """Admin endpoints; `require_agent` is the app's dependency that admits agents only."""
    # Dependencies as defaults: annotations are strings here and FastAPI can't see local names.
    router = APIRouter(prefix="/v1/admin/dead-letters", tags=["admin"])

    @router.get("", response_model=DeadLetterList)
    async def list_dead_letters(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100, _: Any = Depends(require_agent)
    ) -> DeadLetterList:
        return DeadLetterList(items=await list_dead(bus_getter(), limit))

    @router.post("/replay", response_model=ReplayResult)
    async def replay_dead_letters(request: ReplayRequest, agent: Any = Depends(require_agent)) -> ReplayResult:
        result = await replay_dead(bus_getter(), request.ids, budget_s=HTTP_REPLAY_BUDGET_S)
        log.info(
            "dead letters replayed by agent",
            extra=who(agent) | {"ids": request.ids, "replayed": result.replayed, "complete": result.complete},
        )
        return result

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
    stop = asyncio.Event()  # SIGTERM/SIGINT: finish the message in hand, put the rest back, report
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await bus.connect()
    try:
        if args.command == "list":
            for item in await list_dead(bus, args.limit):
                print(item.model_dump_json())
            return 0
        result = await replay_dead(bus, args.ids, stop=stop)
        print(result.model_dump_json(), flush=True)
        return 0 if result.complete else 1
    finally:
        await bus.close()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(_main()))
