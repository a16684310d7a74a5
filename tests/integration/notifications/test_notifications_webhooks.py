"""Webhooks against real servers: RabbitMQ, the MongoDB-wire server and a real HTTP receiver.

The receiver is a uvicorn server started in the test on localhost; it checks nothing itself: the
test verifies every signature with the `standardwebhooks` package (the Standard Webhooks reference
implementation, independent of ours). Time for retries and secret expiry is an injected FixedClock.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika.channel
import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.notifications.app import create_app
from services.notifications.settings import Settings
from services.notifications.webhooks.mutex import BrokerMutex
from services.notifications.webhooks.store import new_delivery
from shared.bus import EventBus
from shared.clock import FixedClock
from shared.events import CloudEvent
from shared.queues import Unroutable
from shared.tokens import mint
from tests.integration.commands import Commands
from tests.integration.conftest import make_event
from tests.ports import free_port

# Types the email path does not consume: what reaches the receiver comes only through the webhooks queue.
TYPE, OTHER_TYPE = "return.replaced", "return.feedback_received"


@dataclass
class Receiver:
    """Records every POST; answers `fail_next` of them (or all, with `always_fail`) with 500."""

    url: str = ""
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_next: int = 0
    always_fail: bool = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests.append(({k.decode(): v.decode() for k, v in scope["headers"]}, body))
        status = 500 if self.always_fail or self.fail_next > 0 else 204
        self.fail_next = max(0, self.fail_next - 1)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def of(self, event_id: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for h, b in self.requests if h.get("webhook-id") == event_id]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app, port = Receiver(), free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    app.url = f"http://127.0.0.1:{port}/hooks"
    yield app
    server.should_exit = True
    await task


class Recorded(logging.Handler):
    """Counts the consumer's "webhook deliveries recorded" lines per event id (copies consumed)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "webhook deliveries recorded":
            self.counts[vars(record)["event_id"]] += 1


@dataclass
class Hooks:
    settings: Settings
    clock: FixedClock
    client: httpx.AsyncClient
    publisher: EventBus
    db: Any
    recorded: Recorded
    app: Any = None

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(self.settings, role, f'{role}-1', 'notifications')}"}

    async def register(self, url: str, types: list[str], role: str = "service") -> httpx.Response:
        return await self.client.post("/v1/webhooks", json={"url": url, "event_types": types}, headers=self.as_(role))

    async def endpoint(self, url: str, types: list[str]) -> dict[str, Any]:
        response = await self.register(url, types)
        assert response.status_code == 201, response.text
        return response.json()

    async def deliveries(self, endpoint_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(f"/v1/webhooks/{endpoint_id}/deliveries", headers=self.as_("agent"))
        assert response.status_code == 200, response.text
        return response.json()["items"]


Start = Callable[..., Awaitable[Hooks]]


@pytest.fixture
async def start(settings: Settings, db: Any, amqp: Any, bus_factory: Any) -> AsyncIterator[Start]:
    """`await start(**settings)`: the notifications service on a FixedClock, webhooks to localhost allowed."""
    async with asynccontextmanager(_started)(settings, db, amqp, bus_factory) as make:
        yield make


async def _started(settings: Settings, db: Any, amqp: Any, bus_factory: Any) -> AsyncIterator[Start]:
    apps: list[tuple[LifespanManager, httpx.AsyncClient, Any]] = []
    recorded = Recorded()
    bindings_log = logging.getLogger("services.notifications.webhooks.bindings")
    bindings_log.addHandler(recorded)
    bindings_log.setLevel(logging.INFO)

    async def make(**overrides: Any) -> Hooks:
        changes = {"webhooks_allow_http": True, "webhooks_allow_private": True, "webhooks_poll_ms": 30, **overrides}
        configured = settings.model_copy(update=changes)
        clock = FixedClock(datetime.now(UTC).replace(microsecond=0))  # the store keeps milliseconds
        app = create_app(configured, clock)
        manager = LifespanManager(app, startup_timeout=20, shutdown_timeout=20)
        await manager.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notifications")
        apps.append((manager, client, app))
        publisher = await bus_factory("publisher")
        return Hooks(configured, clock, client, publisher, db, recorded, app)

    try:
        yield make
    finally:
        bindings_log.removeHandler(recorded)
        for manager, client, app in reversed(apps):
            await client.aclose()
            await manager.__aexit__(None, None, None)
            async with amqp.channel() as channel:
                for name in [*app.state.bus.names.all, app.state.webhook_queue.name]:
                    await channel.queue_delete(name)


def verify(secret: str, request: tuple[dict[str, str], bytes]) -> dict[str, Any]:
    headers, body = request
    payload: dict[str, Any] = Webhook(secret).verify(body, headers)
    return payload


async def test_no_endpoint_no_binding_then_bound_at_registration(start: Start, receiver: Receiver) -> None:
    hooks = await start()
    with pytest.raises(Unroutable):  # nothing is bound to the type: the service consumes none of it
        await hooks.publisher.publish(make_event(TYPE))
    created = await hooks.endpoint(receiver.url, [TYPE])
    await hooks.publisher.publish(make_event(TYPE))  # bound before the registration answered
    response = await hooks.client.delete(f"/v1/webhooks/{created['id']}", headers=hooks.as_("agent"))
    assert response.status_code == 204
    with pytest.raises(Unroutable):
        await hooks.publisher.publish(make_event(TYPE))


async def test_event_delivered_once_signed_even_when_redelivered(
    start: Start, receiver: Receiver, wait_until: Any
) -> None:
    hooks = await start()
    created = await hooks.endpoint(receiver.url, [TYPE])
    assert created["secret"].startswith("whsec_") and created["status"] == "enabled"
    shown = await hooks.client.get(f"/v1/webhooks/{created['id']}", headers=hooks.as_("service"))
    assert "secret" not in shown.json() and "secrets" not in shown.json()  # shown once, at creation
    event = make_event(TYPE, subject="r-42")
    await hooks.publisher.publish(event)
    await hooks.publisher.publish(event)  # the same event again (at-least-once upstream)
    await wait_until(lambda: hooks.recorded.counts[event.id] >= 2, message="both copies consumed")
    await wait_until(lambda: receiver.of(event.id), message="delivered")
    ours = await hooks.deliveries(created["id"])
    await wait_until(lambda: ours and ours[0]["status"] == "delivered")
    assert len(receiver.of(event.id)) == 1
    headers, body = receiver.of(event.id)[0]
    assert headers["content-type"] == "application/cloudevents+json"
    delivered = verify(created["secret"], (headers, body))
    assert CloudEvent.model_validate(delivered) == event
    with pytest.raises(WebhookVerificationError):
        verify("whsec_" + "A" * 32, (headers, body))
    [delivery] = await hooks.deliveries(created["id"])
    assert [a["status_code"] for a in delivery["attempts"]] == [204]


async def test_failing_receiver_is_retried_on_the_clock_then_succeeds(
    start: Start, receiver: Receiver, wait_until: Any
) -> None:
    hooks = await start()
    created = await hooks.endpoint(receiver.url, [TYPE])
    receiver.fail_next = 2
    event = make_event(TYPE)
    await hooks.publisher.publish(event)

    async def attempts() -> list[int | None]:
        found = await hooks.deliveries(created["id"])
        return [a["status_code"] for a in found[0]["attempts"]] if found else []

    await wait_until(lambda: len(receiver.of(event.id)) == 1)
    await wait_until(lambda: _equal(attempts(), [500]))
    hooks.clock.advance(timedelta(seconds=5))  # the first delay
    await wait_until(lambda: _equal(attempts(), [500, 500]))
    [pending] = await hooks.deliveries(created["id"])
    assert pending["status"] == "pending"
    assert datetime.fromisoformat(pending["next_attempt_at"]) == hooks.clock.now() + timedelta(seconds=300)
    hooks.clock.advance(timedelta(seconds=300))  # the second delay
    await wait_until(lambda: _equal(attempts(), [500, 500, 204]))
    [done] = await hooks.deliveries(created["id"])
    assert done["status"] == "delivered" and len(receiver.of(event.id)) == 3
    for request in receiver.of(event.id):  # every attempt signed, the same webhook-id
        verify(created["secret"], request)


async def _equal(value: Awaitable[Any], expected: Any) -> bool:
    return bool(await value == expected)


async def test_replay_by_event_id_and_by_time_range(start: Start, receiver: Receiver, wait_until: Any) -> None:
    hooks = await start()
    created = await hooks.endpoint(receiver.url, [TYPE, OTHER_TYPE])
    first, second = make_event(TYPE), make_event(OTHER_TYPE)
    await hooks.publisher.publish(first)
    await hooks.publisher.publish(second)
    await wait_until(lambda: receiver.of(first.id) and receiver.of(second.id))
    replay = f"/v1/webhooks/{created['id']}/replay"
    response = await hooks.client.post(replay, json={"event_id": first.id}, headers=hooks.as_("agent"))
    assert response.status_code == 202 and response.json() == {"queued": 1}
    await wait_until(lambda: len(receiver.of(first.id)) == 2)
    since, until = first.time - timedelta(seconds=1), second.time + timedelta(seconds=1)
    body = {"since": since.isoformat(), "until": until.isoformat()}
    response = await hooks.client.post(replay, json=body, headers=hooks.as_("service"))
    assert response.json() == {"queued": 2}
    await wait_until(lambda: len(receiver.of(first.id)) == 3 and len(receiver.of(second.id)) == 2)
    later = {"since": until.isoformat(), "until": (until + timedelta(hours=1)).isoformat()}
    response = await hooks.client.post(replay, json=later, headers=hooks.as_("service"))
    assert response.json() == {"queued": 0}
    unknown = await hooks.client.post(replay, json={"event_id": "nope"}, headers=hooks.as_("agent"))
    assert unknown.status_code == 404
    for request in receiver.requests:
        verify(created["secret"], request)


async def test_endpoint_disabled_after_failures_then_enabled_by_an_agent(
    start: Start, receiver: Receiver, wait_until: Any
) -> None:
    hooks = await start(webhooks_retry_window_s=0, webhooks_disable_after_failures=2)
    created = await hooks.endpoint(receiver.url, [TYPE])
    path = f"/v1/webhooks/{created['id']}"
    receiver.always_fail = True
    events = [make_event(TYPE) for _ in range(2)]
    for event in events:
        await hooks.publisher.publish(event)

    async def status() -> str:
        return str((await hooks.client.get(path, headers=hooks.as_("agent"))).json()["status"])

    await wait_until(lambda: _equal(status(), "disabled"), message="endpoint disabled")
    held = make_event(TYPE)
    await hooks.publisher.publish(held)  # recorded, not sent, while disabled
    await wait_until(lambda: hooks.recorded.counts[held.id] >= 1)
    assert not receiver.of(held.id)
    assert (await hooks.client.post(f"{path}/enable", headers=hooks.as_("service"))).status_code == 403
    enabled = await hooks.client.post(f"{path}/enable", headers=hooks.as_("agent"))
    assert enabled.status_code == 200 and enabled.json()["status"] == "enabled"
    assert enabled.json()["consecutive_failures"] == 0
    receiver.always_fail = False
    since = min(e.time for e in [*events, held]) - timedelta(seconds=1)
    body = {"since": since.isoformat(), "until": (held.time + timedelta(seconds=1)).isoformat()}
    response = await hooks.client.post(f"{path}/replay", json=body, headers=hooks.as_("agent"))
    assert response.json() == {"queued": 3}
    await wait_until(lambda: all(receiver.of(e.id)[-1:] for e in [*events, held]))
    await wait_until(lambda: _equal(_statuses(hooks, created["id"]), {"delivered"}))


async def _statuses(hooks: Hooks, endpoint_id: str) -> set[str]:
    return {d["status"] for d in await hooks.deliveries(endpoint_id)}


async def test_rotated_secret_signs_with_both_until_the_overlap_ends(
    start: Start, receiver: Receiver, wait_until: Any
) -> None:
    hooks = await start()
    created = await hooks.endpoint(receiver.url, [TYPE])
    old = created["secret"]
    rotated = await hooks.client.post(f"/v1/webhooks/{created['id']}/secret/rotate", headers=hooks.as_("service"))
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != old and new.startswith("whsec_")
    assert datetime.fromisoformat(rotated.json()["previous_valid_until"]) == hooks.clock.now() + timedelta(hours=24)
    during = make_event(TYPE)
    await hooks.publisher.publish(during)
    await wait_until(lambda: receiver.of(during.id))
    [request] = receiver.of(during.id)
    assert len(request[0]["webhook-signature"].split(" ")) == 2
    verify(old, request)  # a receiver not yet updated
    verify(new, request)  # a receiver already updated
    hooks.clock.advance(timedelta(hours=24, seconds=1))
    after = make_event(TYPE)
    await hooks.publisher.publish(after)
    await wait_until(lambda: receiver.of(after.id))
    [request] = receiver.of(after.id)
    verify(new, request)
    with pytest.raises(WebhookVerificationError):
        verify(old, request)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/hooks", "https"),
        ("https://127.0.0.1/hooks", "not a public one"),
        ("https://10.0.0.7/hooks", "not a public one"),
        ("https://169.254.169.254/latest", "not a public one"),
        ("https://localhost:8443/hooks", "not a public one"),
        ("https://100.100.100.200/latest/meta-data", "not a public one"),
        ("https://no-such-host.invalid/hooks", "resolve"),
    ],
)
async def test_bad_urls_are_refused_at_registration(start: Start, url: str, reason: str) -> None:
    hooks = await start(webhooks_allow_http=False, webhooks_allow_private=False)
    response = await hooks.register(url, [TYPE])
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert error["field"] == "url" and reason in error["reason"]
    listed = await hooks.client.get("/v1/webhooks", headers=hooks.as_("agent"))
    assert listed.json()["items"] == []


async def test_registration_rules(start: Start, receiver: Receiver) -> None:
    hooks = await start()
    unknown = await hooks.register(receiver.url, ["return.nonsense"])
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.json()["errors"]] == ["event_types"]
    assert (await hooks.register(receiver.url, [TYPE], role="buyer")).status_code == 403
    assert (await hooks.register(receiver.url, [TYPE], role="agent")).status_code == 201


async def _routable(hooks: Hooks) -> bool:
    try:
        await hooks.publisher.publish(make_event(TYPE))
    except Unroutable:
        return False
    return True


async def test_bindings_reconciled_at_start_up_and_periodically(
    start: Start, receiver: Receiver, wait_until: Any
) -> None:
    first = await start(webhooks_reconcile_s=3600)  # only its start-up reconcile runs
    created = await first.endpoint(receiver.url, [TYPE])
    # The endpoint goes without its binding going (another replica's delete that failed to unbind).
    await first.db.webhook_endpoints.delete_one({"_id": created["id"]})
    assert await _routable(first)
    second = await start(webhooks_reconcile_s=3600)  # a replica starting: bindings = stored endpoints
    assert not await _routable(second)
    again = await second.endpoint(receiver.url, [TYPE])
    assert await _routable(second)
    third = await start(webhooks_reconcile_s=0.1)
    await third.db.webhook_endpoints.delete_one({"_id": again["id"]})
    await wait_until(lambda: _not(_routable(third)), message="the periodic reconcile unbound the type")


async def _not(value: Awaitable[bool]) -> bool:
    return not await value


async def test_two_replicas_deliver_each_event_once(start: Start, receiver: Receiver, wait_until: Any) -> None:
    one, two = await start(), await start()
    created = await one.endpoint(receiver.url, [TYPE])
    events = [make_event(TYPE) for _ in range(10)]
    for event in events:  # each twice: the two replicas share the queue and may each take a copy
        await one.publisher.publish(event)
        await two.publisher.publish(event)
    await wait_until(lambda: all(one.recorded.counts[e.id] >= 2 for e in events), message="every copy consumed")
    await wait_until(lambda: _equal(_statuses(one, created["id"]), {"delivered"}))
    assert sorted(len(receiver.of(e.id)) for e in events) == [1] * len(events)


async def test_a_crashed_senders_claim_lapses_and_another_delivers(
    start: Start, receiver: Receiver, wait_until: Any
) -> None:
    hooks = await start()
    created = await hooks.endpoint(receiver.url, [TYPE])
    endpoint = await hooks.db.webhook_endpoints.find_one({"_id": created["id"]})
    event = make_event(TYPE)
    # What a sender killed mid-attempt leaves: pending, claimed, its lease just run out.
    doc = new_delivery(endpoint, event.id, event.type, event.time, event.to_json().decode(), hooks.clock.now())
    doc.update(claim="dead-sender", claimed_until=datetime.now(UTC) - timedelta(seconds=1))
    await hooks.db.webhook_deliveries.insert_one(doc)
    await wait_until(lambda: receiver.of(event.id), message="the poll took the lapsed claim over")
    await wait_until(lambda: _equal(_statuses(hooks, created["id"]), {"delivered"}))
    verify(created["secret"], receiver.of(event.id)[0])


async def test_store_writes_and_metric_per_delivery(
    service_commands: Commands, start: Start, receiver: Receiver, wait_until: Any
) -> None:
    hooks = await start()
    created = await hooks.endpoint(receiver.url, [TYPE])

    def delivered_count() -> float:
        return REGISTRY.get_sample_value("returns_platform_webhook_deliveries_total", {"outcome": "delivered"}) or 0

    before = delivered_count()
    service_commands.clear()
    event = make_event(TYPE)
    await hooks.publisher.publish(event)
    await wait_until(lambda: _equal(_statuses(hooks, created["id"]), {"delivered"}))
    # The sender counts an outcome once its write is acknowledged, so the count may trail the status.
    await wait_until(lambda: delivered_count() > before, message="the delivery counted")
    # The consumer's insert, the claim by `_id`, the outcome by `_id` and claim: nothing else written.
    assert service_commands.writes("webhook_deliveries") == ["insert", "findAndModify", "update"]
    assert service_commands.writes("webhook_endpoints") == []
    assert delivered_count() == before + 1


async def test_changing_types_moves_the_bindings(start: Start, receiver: Receiver) -> None:
    hooks = await start()
    created = await hooks.endpoint(receiver.url, [TYPE])
    path = f"/v1/webhooks/{created['id']}"
    changed = await hooks.client.patch(path, json={"event_types": [OTHER_TYPE]}, headers=hooks.as_("agent"))
    assert changed.status_code == 200 and changed.json()["event_types"] == [OTHER_TYPE]
    assert not await _routable(hooks)
    await hooks.publisher.publish(make_event(OTHER_TYPE))  # bound now
    refused = await hooks.client.patch(path, json={"url": "ftp://example.com/"}, headers=hooks.as_("agent"))
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "url"
    missing = await hooks.client.patch("/v1/webhooks/whe_nope", json={"description": "x"}, headers=hooks.as_("agent"))
    assert missing.status_code == 404


async def test_registration_under_an_idempotency_key_creates_one_endpoint(start: Start, receiver: Receiver) -> None:
    hooks = await start()
    headers = {**hooks.as_("service"), "Idempotency-Key": "register-hooks-1"}
    body = {"url": receiver.url, "event_types": [TYPE]}
    first = await hooks.client.post("/v1/webhooks", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await hooks.client.post("/v1/webhooks", json=body, headers=headers)  # a retry after a lost answer
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and again.headers["Location"] == first.headers["Location"]
    other = await hooks.client.post("/v1/webhooks", json={**body, "event_types": [OTHER_TYPE]}, headers=headers)
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key", other.text
    listed = await hooks.client.get("/v1/webhooks", headers=hooks.as_("agent"))
    assert [e["id"] for e in listed.json()["items"]] == [first.json()["id"]]


async def test_a_message_parked_from_the_webhooks_queue_is_replayed_into_it(
    start: Start, receiver: Receiver, amqp: Any, wait_until: Any
) -> None:
    hooks = await start()
    created = await hooks.endpoint(receiver.url, [TYPE])
    app_queue = hooks.app.state.webhook_queue
    await app_queue.stop()  # no consumer: the test takes the event itself, as a crashing consumer would
    event = make_event(TYPE)
    await hooks.publisher.publish(event)
    async with amqp.channel() as channel:
        queue = await channel.declare_queue(app_queue.name, passive=True)
        message = await queue.get(no_ack=False, timeout=5)
        await message.reject(requeue=False)  # the broker dead-letters it, naming the queue in `x-death`
    listed = await hooks.client.get("/v1/admin/dead-letters", headers=hooks.as_("agent"))
    assert [item["id"] for item in listed.json()["items"]] == [event.id]
    replayed = await hooks.client.post("/v1/admin/dead-letters/replay", json={}, headers=hooks.as_("agent"))
    assert [(i["id"], i["outcome"]) for i in replayed.json()["items"]] == [(event.id, "replayed")]
    await app_queue.start()  # the webhooks consumer again: the replayed event reaches the endpoint
    await wait_until(lambda: receiver.of(event.id), message="the replayed event was delivered")
    verify(created["secret"], receiver.of(event.id)[0])


async def test_a_replica_rebinds_a_type_another_replica_unbound(start: Start, receiver: Receiver) -> None:
    one, two = await start(webhooks_reconcile_s=3600), await start(webhooks_reconcile_s=3600)
    first = await one.endpoint(receiver.url, [TYPE])
    deleted = await two.client.delete(f"/v1/webhooks/{first['id']}", headers=two.as_("agent"))
    assert deleted.status_code == 204 and not await _routable(one)  # the other replica unbound it
    await one.endpoint(receiver.url, [TYPE])  # `one` bound TYPE before: it must ask the broker again
    assert await _routable(one)


async def test_a_release_racing_a_registration_leaves_the_type_bound(
    start: Start, receiver: Receiver, wait_until: Any
) -> None:
    one, two = await start(webhooks_reconcile_s=3600), await start(webhooks_reconcile_s=3600)
    first = await one.endpoint(receiver.url, [TYPE])
    store = two.app.state.webhook_queue.store
    read, go = asyncio.Event(), asyncio.Event()
    reads = store.subscribed_types

    async def read_then_wait() -> set[str]:  # `two` read the store (TYPE unwanted) and is slow to unbind
        wanted: set[str] = await reads()
        if not read.is_set():
            read.set()
            await go.wait()
        return wanted

    store.subscribed_types = read_then_wait
    deleting = asyncio.create_task(two.client.delete(f"/v1/webhooks/{first['id']}", headers=two.as_("agent")))
    await read.wait()
    registering = asyncio.create_task(one.endpoint(receiver.url, [TYPE]))  # while `two` read but not unbound
    await wait_until(lambda: _equal(one.db.webhook_endpoints.count_documents({}), 1), message="stored")
    go.set()
    assert (await deleting).status_code == 204
    await registering
    assert await _routable(one)  # the store wants TYPE: whoever touched the binding last left it bound


async def test_the_periodic_reconcile_repairs_a_missing_binding(
    start: Start, receiver: Receiver, amqp: Any, wait_until: Any
) -> None:
    hooks = await start(webhooks_reconcile_s=0.1)
    await hooks.endpoint(receiver.url, [TYPE])
    async with amqp.channel() as channel:  # what a replica killed between its unbind and its re-read leaves
        queue = await channel.declare_queue(hooks.app.state.webhook_queue.name, passive=True)
        await queue.unbind(hooks.settings.exchange, TYPE)
    await wait_until(lambda: _routable(hooks), message="the periodic reconcile bound the wanted type again")


async def test_the_bindings_lock_is_held_by_one_connection_at_a_time(start: Start, wait_until: Any) -> None:
    hooks = await start()
    name = f"{hooks.app.state.webhook_queue.name}.test-lock"
    one = BrokerMutex(lambda: hooks.app.state.bus.connection, name)
    two = BrokerMutex(lambda: hooks.publisher.connection, name)
    order: list[str] = []

    async def take(mutex: BrokerMutex, who: str, inside: asyncio.Event, leave: asyncio.Event) -> None:
        async with mutex.held():
            order.append(f"{who} in")
            inside.set()
            await leave.wait()
            order.append(f"{who} out")

    in_one, in_two, leave_one, leave_two = asyncio.Event(), asyncio.Event(), asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(take(one, "one", in_one, leave_one))
    await in_one.wait()
    second = asyncio.create_task(take(two, "two", in_two, leave_two))
    await wait_until(lambda: two.refused >= 1, message="the second connection found the lock held")
    assert not in_two.is_set()
    leave_two.set()
    leave_one.set()
    await asyncio.gather(first, second)
    assert order == ["one in", "one out", "two in", "two out"]


async def test_a_holder_whose_delete_failed_frees_the_lock_when_it_expires(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = await start()
    name = f"{hooks.app.state.webhook_queue.name}.test-lock-expiry"
    stale = BrokerMutex(lambda: hooks.publisher.connection, name, expires_ms=500)
    other = BrokerMutex(lambda: hooks.app.state.bus.connection, name, expires_ms=500)

    async def broken_delete(*_: Any, **__: Any) -> None:
        raise ConnectionError("the delete was lost")

    with monkeypatch.context() as patched:
        patched.setattr(aio_pika.channel.Channel, "queue_delete", broken_delete)
        async with stale.held():
            pass  # left holding: its connection lives on, and so would the queue without x-expires
    async with asyncio.timeout(15):
        async with other.held():
            pass
    assert other.refused >= 1  # it found the lock held first
