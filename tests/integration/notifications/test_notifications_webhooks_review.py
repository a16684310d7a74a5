"""Webhooks under review findings: failures that must still count, parked events, rotations, replays."""

from __future__ import annotations

from typing import Any

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
