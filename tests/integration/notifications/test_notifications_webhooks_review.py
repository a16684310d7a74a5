"""Webhooks under review findings: failures that must still count, parked events, rotations, replays."""

from __future__ import annotations

import uuid
from typing import Any

import aio_pika

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
    app_queue = hooks.app.state.webhook_queue
    await app_queue.stop()  # no consumer: the replayed message stays where the replay put it
    replayed = await hooks.client.post("/v1/admin/dead-letters/replay", json={}, headers=hooks.as_("agent"))
    assert [(i["id"], i["outcome"]) for i in replayed.json()["items"]] == [(bad_id, "replayed")]
    async with amqp.channel() as channel:
        queue = await channel.declare_queue(app_queue.name, passive=True)
        message = await queue.get(no_ack=False, timeout=5)  # back in the webhooks queue, not the inbox
        assert message.message_id == bad_id
        await message.nack(requeue=True)
