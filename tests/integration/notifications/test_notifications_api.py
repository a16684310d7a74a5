"""The notification log over HTTP: who may see what, resends by agents, previews."""

from __future__ import annotations

import uuid

from services.notifications.samples import AT, sample_data, sample_event
from shared.events import new_event

BUYER, SELLER = "buyer@example.com", "seller@example.com"


async def deliver_request(service, announcements, wait_until):
    """A return.created delivered: one email to the buyer, one to the seller."""
    created = sample_event("return.created", event_id=str(uuid.uuid4()))
    await service.publish(created)
    await wait_until(lambda: len(announcements.of("notification.sent")) >= 2, timeout=10)
    return created


async def test_agents_see_all_and_filter_recipients_see_their_own(service, announcements, wait_until):
    created = await deliver_request(service, announcements, wait_until)
    other = new_event(
        "return.created",
        service="returns",
        subject="ret_other",
        time=AT,
        sequence=1,
        data=sample_data("return.created").model_copy(update={"return_id": "ret_other"}),
    )
    await service.publish(other)
    await wait_until(lambda: len(announcements.of("notification.sent")) >= 4, timeout=10)
    client, agent = service.client, service.token("agent", "agent-1")

    everything = (await client.get("/v1/notifications", headers=agent)).json()
    assert len(everything["items"]) == 4 and everything["next_cursor"] is None
    for_return = (await client.get("/v1/notifications", params={"return_id": "ret_sample1"}, headers=agent)).json()
    assert {(n["recipient_role"], n["template"]) for n in for_return["items"]} == {
        ("buyer", "buyer/return_requested"),
        ("seller", "seller/new_request"),
    }
    assert all(n["event_id"] == created.id and n["status"] == "sent" for n in for_return["items"])
    sellers = (
        await client.get("/v1/notifications", params={"recipient_id": "s-1", "status": "sent"}, headers=agent)
    ).json()
    assert {n["template"] for n in sellers["items"]} == {"seller/new_request"}
    assert len(sellers["items"]) == 2
    assert "recipient_email" not in sellers["items"][0] and SELLER not in str(sellers)

    page = (await client.get("/v1/notifications", params={"limit": 3}, headers=agent)).json()
    rest = (
        await client.get("/v1/notifications", params={"limit": 3, "cursor": page["next_cursor"]}, headers=agent)
    ).json()
    assert len(page["items"]) == 3 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert {n["notification_id"] for n in page["items"] + rest["items"]} == {
        n["notification_id"] for n in everything["items"]
    }

    mine = (await client.get("/v1/notifications", headers=service.token("buyer", "b-1"))).json()
    assert {n["template"] for n in mine["items"]} == {"buyer/return_requested"} and len(mine["items"]) == 2
    nosy = await client.get("/v1/notifications", params={"recipient_id": "s-1"}, headers=service.token("buyer", "b-1"))
    assert nosy.status_code == 200 and nosy.json()["items"] == []
    seller_doc = sellers["items"][0]["notification_id"]
    hidden = await client.get(f"/v1/notifications/{seller_doc}", headers=service.token("buyer", "b-1"))
    assert hidden.status_code == 404 and hidden.headers["content-type"] == "application/problem+json"
    own = await client.get(f"/v1/notifications/{seller_doc}", headers=service.token("seller", "s-1"))
    assert own.status_code == 200
    assert own.json()["smtp_message_id"].endswith(f"@{service.settings.message_id_domain}>")


async def test_bad_filters_are_refused_naming_the_field(service):
    agent = service.token("agent", "agent-1")
    bad = await service.client.get("/v1/notifications", params={"status": "lost"}, headers=agent)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"
    cursor = await service.client.get("/v1/notifications", params={"cursor": "???"}, headers=agent)
    assert cursor.status_code == 400 and cursor.json()["errors"][0]["field"] == "cursor"
    anonymous = await service.client.get("/v1/notifications")
    assert anonymous.status_code == 401


async def test_an_agent_resends_an_email_once_per_idempotency_key(service, mailbox, announcements, wait_until):
    await deliver_request(service, announcements, wait_until)
    [doc] = await service.notifications(recipient_role="buyer")
    url = f"/v1/notifications/{doc['_id']}/resend"
    agent = {**service.token("agent", "agent-1"), "Idempotency-Key": "resend-1"}

    refused = await service.client.post(url, headers=service.token("buyer", "b-1"))
    assert refused.status_code == 403
    first = await service.client.post(url, headers=agent)
    assert first.status_code == 202 and first.json()["generation"] == 1
    await wait_until(lambda: len(announcements.of("notification.sent")) >= 3, timeout=10)
    again = await service.client.post(url, headers=agent)
    assert again.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"

    to_buyer = [m for m in mailbox.received() if m["To"] == BUYER]
    assert [m["Message-ID"] for m in to_buyer] == [
        f"<{doc['_id']}.0@{service.settings.message_id_domain}>",
        f"<{doc['_id']}.1@{service.settings.message_id_domain}>",
    ]
    [after] = await service.notifications(recipient_role="buyer")
    assert after["status"] == "sent" and after["generation"] == 1 and after["resent_by"] == "agent-1"
    missing = await service.client.post(
        "/v1/notifications/ntf_missing/resend", headers=service.token("agent", "agent-1")
    )
    assert missing.status_code == 404


async def test_a_pending_email_is_not_resent(service, smtp, announcements, wait_until):
    smtp.stop()  # nothing can be sent: the email stays pending
    created = sample_event("return.created", event_id=str(uuid.uuid4()))
    await service.publish(created)
    await wait_until(lambda: service.processed(created.id))
    [doc] = await service.notifications(recipient_role="buyer")
    response = await service.client.post(
        f"/v1/notifications/{doc['_id']}/resend", headers=service.token("agent", "agent-1")
    )
    assert response.status_code == 409 and response.json()["status"] == 409


async def test_preview_renders_without_sending(service, mailbox):
    agent = {**service.token("agent", "agent-1"), "Content-Type": "application/json"}
    event = sample_event("return.authorized", locale="zh-CN", late=True)
    response = await service.client.post("/v1/notifications/preview", headers=agent, content=event.to_json())
    assert response.status_code == 200
    emails = response.json()["emails"]
    assert [(e["recipient_role"], e["template"], e["locale"]) for e in emails] == [
        ("buyer", "buyer/return_authorized", "zh-CN"),
        ("seller", "seller/auto_authorized", "zh-CN"),
    ]
    assert "2025年4月2日" in emails[0]["text"]
    broken = event.model_copy(update={"data": {**event.data, "lines": "none"}})
    refused = await service.client.post("/v1/notifications/preview", headers=agent, content=broken.to_json())
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "data.lines"
    assert (await service.notifications()) == [] and mailbox.received() == []
    buyer_headers = {**service.token("buyer", "b-1"), "Content-Type": "application/json"}
    buyer = await service.client.post("/v1/notifications/preview", headers=buyer_headers, content=event.to_json())
    assert buyer.status_code == 403
