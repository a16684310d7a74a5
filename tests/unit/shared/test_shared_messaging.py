"""Subscriptions (registry types only, validated data) and the messaging start/stop order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared.events import EVENT_TYPES, EXCHANGE, ORDERS_EXCHANGE, CloudEvent, UnknownEventType
from shared.messaging import Messaging, Subscription
from shared.models import BuyerFlag, Return
from shared.queues import is_permanent

FLAG = {
    "buyer_id": "b-1",
    "flagged": True,
    "returns_90d": 5,
    "orders_90d": 6,
    "return_rate_90d": 0.8,
    "reason": "returns_90d >= 5",
    "at": "2026-03-02T10:00:00Z",
}


def event(event_type: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        id="e-1",
        source="/test",
        type=event_type,
        time=datetime(2026, 3, 2, tzinfo=UTC),
        subject="b-1",
        sequence=4,
        data=data,
    )


async def ignore(context: Any, event: CloudEvent, data: Any) -> None:
    pass


def test_a_type_missing_from_the_registry_cannot_be_subscribed():
    with pytest.raises(UnknownEventType):
        Subscription("return.teleported", ignore)


def test_a_model_must_refine_the_registered_one():
    class Strict(Return):
        pass

    assert Subscription("return.received", ignore, model=Strict).data_model is Strict
    with pytest.raises(TypeError):
        Subscription("return.received", ignore, model=BuyerFlag)


def test_the_exchange_is_the_registry_s():
    assert Subscription("order.delivered", ignore).exchange == ORDERS_EXCHANGE
    assert Subscription("buyer.flagged", ignore).exchange == EXCHANGE
    assert Subscription("buyer.flagged", ignore).data_model is EVENT_TYPES["buyer.flagged"].data


async def test_the_handler_gets_context_envelope_and_validated_data():
    got: list[tuple[Any, ...]] = []

    async def handler(context: str, event: CloudEvent, flag: BuyerFlag) -> None:
        got.append((context, event, flag))

    deliver = Subscription("buyer.flagged", handler).bind("ctx")
    flagged = event("buyer.flagged", FLAG)
    await deliver(flagged)
    [(context, envelope, flag)] = got
    assert (context, envelope) == ("ctx", flagged)
    assert isinstance(flag, BuyerFlag) and flag.returns_90d == 5


async def test_invalid_data_never_reaches_the_handler_and_is_a_permanent_failure():
    calls = []

    async def handler(context: None, event: CloudEvent, flag: BuyerFlag) -> None:
        calls.append(flag)

    with pytest.raises(ValidationError) as raised:
        await Subscription("buyer.flagged", handler).bind(None)(event("buyer.flagged", {**FLAG, "flagged": "perhaps"}))
    assert calls == [] and is_permanent(raised.value)


class Log:
    def __init__(self) -> None:
        self.steps: list[str] = []
        self.bound: list[tuple[str, str | None]] = []


class FakeBus:
    def __init__(self, log: Log, fail_start: bool = False) -> None:
        self.log, self.fail_start = log, fail_start

    async def connect(self) -> None:
        self.log.steps.append("connect")

    def subscribe(self, event_type: str, handler: Any, *, exchange: str | None = None) -> None:
        self.log.steps.append(f"bind {event_type}")
        self.log.bound.append((event_type, exchange))

    async def start(self) -> None:
        if self.fail_start:
            raise ConnectionError("broker refused the queue")
        self.log.steps.append("consume")

    async def close(self) -> None:
        self.log.steps.append("close bus")


class FakeLoop:
    def __init__(self, log: Log, name: str, sync_start: bool = False) -> None:
        self.log, self.name, self.sync_start = log, name, sync_start

    def start(self) -> Any:
        self.log.steps.append(f"start {self.name}")
        if self.sync_start:
            return None

        async def started() -> None:
            pass

        return started()

    async def stop(self) -> None:
        self.log.steps.append(f"stop {self.name}")


def messaging(log: Log, **bus: Any) -> Messaging:
    return Messaging(
        FakeBus(log, **bus),  # type: ignore[arg-type]  # duck-typed fake
        FakeLoop(log, "relay"),  # type: ignore[arg-type]  # duck-typed fake
        {EXCHANGE: "t.events", ORDERS_EXCHANGE: "t.orders"},
    )


async def test_starts_connect_bind_consume_relay_jobs_and_stops_in_reverse():
    log = Log()
    subscriptions = [Subscription("order.delivered", ignore), Subscription("buyer.flagged", ignore)]
    jobs = [FakeLoop(log, "deadlines"), FakeLoop(log, "review", sync_start=True)]
    async with messaging(log).running(subscriptions, object(), jobs=jobs):
        assert log.steps == [
            "connect",
            "bind order.delivered",
            "bind buyer.flagged",
            "consume",
            "start relay",
            "start deadlines",
            "start review",
        ]
        log.steps.clear()
    assert log.steps == ["stop review", "stop deadlines", "stop relay", "close bus"]
    # The contract's exchange names become the deployment's.
    assert log.bound == [("order.delivered", "t.orders"), ("buyer.flagged", "t.events")]


async def test_a_failed_start_stops_what_had_started():
    log = Log()
    with pytest.raises(ConnectionError):
        async with messaging(log, fail_start=True).running(
            [Subscription("buyer.flagged", ignore)], None, jobs=[FakeLoop(log, "deadlines")]
        ):
            pytest.fail("must not run")
    assert log.steps == ["connect", "bind buyer.flagged", "close bus"]
