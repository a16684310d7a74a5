"""Webhooks under review findings: failures that must still count, parked events, rotations, replays."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika

from services.notifications.webhooks.delivery import signing_secrets
from services.notifications.webhooks.store import NEVER, new_delivery
from tests.integration.conftest import make_event
from tests.integration.notifications import test_notifications_webhooks as webhooks
from tests.integration.notifications.test_notifications_webhooks import TYPE, Receiver, Start, _equal

receiver, start = webhooks.receiver, webhooks.start  # the webhooks tests' fixtures: a receiver, the service


async def test_an_attempt_failing_outside_http_is_recorded_then_fails_and_disables_the_endpoint(
    start: Start, receiver: Receiver, wait_until: Any
) -> None:
    hooks = await start(webhooks_retry_window_s=0, webhooks_disable_after_failures=1)
    created = await hooks.endpoint(receiver.url, [TYPE])
    # A stored URL httpx refuses (InvalidURL, no httpx.HTTPError): once it was retried every lease, forever.
    await hooks.db.webhook_endpoints.update_one({"_id": created["id"]}, {"$set": {"url": receiver.url + "\x01"}})
    event = make_event(TYPE)
    await hooks.publisher.publish(event)

    async def status() -> str:
        response = await hooks.client.get(f"/v1/webhooks/{created['id']}", headers=hooks.as_("agent"))
        return str(response.json()["status"])

    await wait_until(lambda: _equal(status(), "disabled"), message="the failed delivery disabled the endpoint")
    [delivery] = await hooks.deliveries(created["id"])
    assert delivery["status"] == "failed"
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] is None
    assert attempt["error"] == "InvalidURL: the attempt failed before a response"
    assert not receiver.requests


async def test_an_unparseable_event_is_parked_and_replayed_into_the_webhooks_queue(
    start: Start, receiver: Receiver, amqp: Any, wait_until: Any
) -> None:
    hooks = await start()
    await hooks.endpoint(receiver.url, [TYPE])  # TYPE bound to the webhooks queue (and nothing else consumes it)
    bad_id = f"bad-{uuid.uuid4().hex}"
    async with amqp.channel() as channel:
        exchange = await channel.get_exchange(hooks.settings.exchange)
        await exchange.publish(aio_pika.Message(b"{not a cloudevent", message_id=bad_id), routing_key=TYPE)

    async def parked() -> list[str]:
        listed = await hooks.client.get("/v1/admin/dead-letters", headers=hooks.as_("agent"))
        return [item["id"] for item in listed.json()["items"]]

    await wait_until(lambda: _equal(parked(), [bad_id]), message="the unparseable event was parked, not dropped")
    listed = await hooks.client.get("/v1/admin/dead-letters", headers=hooks.as_("agent"))
    [item] = listed.json()["items"]
    assert item["error"].startswith("unparseable: ") and item["attempts"] == 1  # why, for the operator
    app_queue = hooks.app.state.webhook_queue
    await app_queue.stop()  # no consumer: the replayed message stays where the replay put it
    replayed = await hooks.client.post("/v1/admin/dead-letters/replay", json={}, headers=hooks.as_("agent"))
    assert [(i["id"], i["outcome"]) for i in replayed.json()["items"]] == [(bad_id, "replayed")]
    async with amqp.channel() as channel:
        queue = await channel.declare_queue(app_queue.name, passive=True)
        message = await queue.get(no_ack=False, timeout=5)  # back in the webhooks queue, not the inbox
        assert message.message_id == bad_id
        await message.nack(requeue=True)


async def test_two_racing_rotations_both_hand_out_secrets_that_verify(start: Start, receiver: Receiver) -> None:
    one, two = await start(), await start()
    created = await one.endpoint(receiver.url, [TYPE])
    reads, both_read = [0], asyncio.Event()

    def racing(read: Any) -> Any:
        async def read_then_wait(endpoint_id: str) -> dict[str, Any] | None:
            doc = await read(endpoint_id)
            reads[0] += 1
            if reads[0] <= 2:  # the first read of each replica waits for the other's: both saw the same secrets
                if reads[0] == 2:
                    both_read.set()
                await asyncio.wait_for(both_read.wait(), 5)
            return doc

        return read_then_wait

    for hooks in (one, two):
        hooks.app.state.webhooks.endpoint = racing(hooks.app.state.webhooks.endpoint)
    path = f"/v1/webhooks/{created['id']}/secret/rotate"
    first, second = await asyncio.gather(
        one.client.post(path, headers=one.as_("agent")), two.client.post(path, headers=two.as_("agent"))
    )
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    endpoint = await one.db.webhook_endpoints.find_one({"_id": created["id"]})
    valid = signing_secrets(endpoint, one.clock.now())
    # The later rotation kept the earlier one's new secret as a previous one: both verify until the overlap ends.
    assert {first.json()["secret"], second.json()["secret"]} <= set(valid)
    assert created["secret"] in valid and len(valid) == 3


async def test_rotating_an_endpoint_deleted_meanwhile_answers_404(start: Start, receiver: Receiver) -> None:
    hooks = await start()
    created = await hooks.endpoint(receiver.url, [TYPE])
    store = hooks.app.state.webhooks
    read = store.endpoint

    async def read_then_deleted(endpoint_id: str) -> dict[str, Any] | None:
        doc = await read(endpoint_id)
        await hooks.db.webhook_endpoints.delete_one({"_id": endpoint_id})  # another replica's DELETE, now
        return doc

    store.endpoint = read_then_deleted
    response = await hooks.client.post(f"/v1/webhooks/{created['id']}/secret/rotate", headers=hooks.as_("agent"))
    assert response.status_code == 404, response.text
    assert await hooks.db.webhook_endpoints.count_documents({"_id": created["id"]}) == 0  # not written back


async def test_a_replay_during_an_attempt_in_flight_is_not_cleared_by_its_outcome(
    start: Start, receiver: Receiver, wait_until: Any
) -> None:
    hooks = await start(webhooks_poll_ms=3_600_000)  # no poll: the test drives the racing order itself
    created = await hooks.endpoint(receiver.url, [TYPE])
    store, worker = hooks.app.state.webhooks, hooks.app.state.webhook_worker
    endpoint = await store.endpoint(created["id"])
    event, now = make_event(TYPE), hooks.clock.now()
    doc = new_delivery(endpoint, event.id, TYPE, event.time, event.to_json().decode(), now)
    doc.update(tries=1, first_attempt_at=now - timedelta(seconds=5))  # a retry of a delivery that failed once
    [recorded] = await store.record([doc])
    in_flight = await store.claim(now, datetime.now(UTC), timedelta(minutes=1), recorded["_id"])  # 1. claimed
    assert in_flight is not None
    assert await store.requeue_one(recorded["_id"], now) == 1  # 2. replayed while its attempt is in flight
    assert await worker.deliver(in_flight) == "pending"  # 3. the attempt (204) settles: it lost its claim
    after = await store.delivery(recorded["_id"])
    assert after["status"] == "pending" and after["tries"] == 0 and after["claimed_until"] == NEVER  # replay kept
    assert [a["status_code"] for a in after["attempts"]] == [204]  # the in-flight attempt is logged all the same
    worker.wake([recorded["_id"]])  # the replay is sent
    await wait_until(lambda: len(receiver.of(event.id)) == 2, message="the replay was sent")
    await wait_until(lambda: _equal(_status(store, recorded["_id"]), "delivered"))


async def _status(store: Any, delivery: str) -> str:
    return str((await store.delivery(delivery))["status"])
