"""Chargebacks against the real servers: the disputes app on MongoDB and RabbitMQ, evidence to stripe-mock.

Stripe's webhooks are signed here with the endpoint's secret as Stripe signs them (the SDK's own
signature helper); the service verifies them with the SDK and submits evidence through it.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aio_pika
import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.disputes.app import create_app
from services.disputes.chargebacks.domain import chargeback_id
from services.disputes.chargebacks.store import Submission
from services.disputes.settings import Settings
from shared.bus import EventBus
from shared.clock import FixedClock
from shared.dispute_models import Chargeback, Evidence
from shared.events import CloudEvent
from shared.models import Actor, Order
from shared.tokens import mint
from tests.integration.disputes_chargebacks_support import (
    NOW,
    SECRET,
    Captured,
    announce,
    dispute,
    knows,
    sign,
    stripe_event,
)
from tests.integration.module_isolation import per_test_settings
from tests.queues import service_queues
from tests.unit.refunds.builders import make_order

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.chargebacks_plugin"]  # its fixture: `published`

STRIPE_MOCK = os.environ.get("STRIPE_API_BASE", "http://127.0.0.1:12111")
JWT_SECRET = "disputes-integration-secret-0123456789abcdef"


@dataclass
class Disputes:
    settings: Settings
    clock: FixedClock
    app: Any
    http: httpx.AsyncClient
    publisher: EventBus
    db: Any
    published: Captured
    wait_until: Any

    def token(self, role: str, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(self.settings, role, sub, 'disputes')}"}

    async def delivered(self, *, refunded: int = 0, **fields: Any) -> Order:
        """An order the service knows (`order.delivered`), with `refunded` minor units refunded on it."""
        order = make_order(reference=f"pi_{uuid.uuid4().hex[:16]}", seller_id="s-1", **fields)
        await announce(self.publisher, self.settings.orders_exchange, order, refunded)
        await self.wait_until(lambda: knows(self.db, order.order_id, refunded), message="order events not consumed")
        return order

    async def webhook(self, body: bytes, signature: str | None) -> httpx.Response:
        headers = {"Content-Type": "application/json"} | ({"Stripe-Signature": signature} if signature else {})
        return await self.http.post("/v1/webhooks/stripe", content=body, headers=headers)

    async def events_of(self, event_type: str, subject: str, count: int = 1) -> list[CloudEvent]:
        return await self.wait_until(
            lambda: len(found := self.published.of_type(event_type, subject)) >= count and found,
            message=f"no {event_type} for {subject}",
        )

    async def doc(self, dispute_id: str) -> dict[str, Any] | None:
        return await self.db["chargebacks"].find_one({"_id": chargeback_id(dispute_id)})


@pytest.fixture
async def disputes(
    mongodb_url: str,
    amqp_url: str,
    db: Any,
    exchange: str,
    queue_prefix: str,
    bus_factory: Any,
    published: Captured,
    amqp: aio_pika.abc.AbstractRobustConnection,
    wait_until: Any,
) -> AsyncIterator[Disputes]:
    settings = Settings(
        **per_test_settings(mongodb_url, amqp_url, db, exchange, queue_prefix, JWT_SECRET),
        stripe_api_base=STRIPE_MOCK,
        stripe_webhook_secret=SECRET,
        stripe_timeout_s=5.0,
    )
    clock = FixedClock(NOW)
    publisher = await bus_factory("test-publisher")
    app = create_app(settings, clock)
    try:
        async with LifespanManager(app, startup_timeout=20, shutdown_timeout=20):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://disputes") as http:
                yield Disputes(settings, clock, app, http, publisher, db, published, wait_until)
    finally:
        async with amqp.channel() as channel:
            for name in service_queues(settings.queue_name, settings.retry_delays_ms):
                await channel.queue_delete(name)
            await channel.exchange_delete(settings.orders_exchange)


async def test_a_signed_dispute_on_a_known_order_opens_a_chargeback_once(disputes):
    order = await disputes.delivered()
    opened = dispute(order.payment.reference)
    body = stripe_event("charge.dispute.created", opened)
    answer = await disputes.webhook(body, sign(body))
    assert answer.status_code == 200 and answer.json() == {"received": True, "outcome": "handled"}
    [event] = await disputes.events_of("chargeback.opened", chargeback_id(opened["id"]))
    chargeback = Chargeback.model_validate(event.data)
    assert chargeback.order_id == order.order_id and chargeback.seller and chargeback.seller.id == "s-1"
    assert chargeback.category == "service" and chargeback.status == "needs_response"
    assert chargeback.evidence_due_by == NOW + timedelta(days=7) and not chargeback.automatic
    assert chargeback.payment_reference == order.payment.reference and event.sequence == 1

    # Stripe delivers again (a fresh signature), and sends the dispute in another event: nothing new.
    again = await disputes.webhook(body, sign(body, at=int(time.time()) - 5))
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    other = stripe_event("charge.dispute.created", opened)
    assert (await disputes.webhook(other, sign(other))).json()["outcome"] == "handled"
    # A later chargeback's event is out: the earlier one would have been published before it.
    fraud = dispute(order.payment.reference, reason="fraudulent")
    body = stripe_event("charge.dispute.created", fraud)
    assert (await disputes.webhook(body, sign(body))).status_code == 200
    [event] = await disputes.events_of("chargeback.opened", chargeback_id(fraud["id"]))
    assert event.data["category"] == "fraud"
    assert len(disputes.published.of_type("chargeback.opened", chargeback_id(opened["id"]))) == 1
    assert await disputes.db["chargebacks"].count_documents({"gateway_dispute_id": opened["id"]}) == 1


async def test_a_dispute_on_an_unknown_payment_is_recorded_without_a_seller(disputes):
    unknown = dispute(f"pi_{uuid.uuid4().hex[:16]}", charge=None)
    body = stripe_event("charge.dispute.created", unknown)
    assert (await disputes.webhook(body, sign(body))).status_code == 200
    [event] = await disputes.events_of("chargeback.opened", chargeback_id(unknown["id"]))
    assert event.data["order_id"] is None and event.data["seller"] is None
    assert event.data["payment_reference"] == unknown["payment_intent"]


async def test_an_order_refunded_in_full_is_answered_by_the_platform_through_stripe(disputes):
    order = await disputes.delivered(lines=[("L1", 1, 2000)], shipping=599, refunded=2599)
    facts = await disputes.db["order_facts"].find_one({"_id": order.order_id})
    [refund_id] = facts["refunds"]
    opened = dispute(order.payment.reference, reason="credit_not_processed")
    body = stripe_event("charge.dispute.created", opened)
    assert (await disputes.webhook(body, sign(body))).json()["outcome"] == "handled"
    subject = chargeback_id(opened["id"])
    [event] = await disputes.events_of("chargeback.evidence_submitted", subject)
    chargeback = Chargeback.model_validate(event.data)
    assert chargeback.status == "under_review" and chargeback.automatic and event.sequence == 2
    assert chargeback.evidence and chargeback.evidence.refund_reference == refund_id
    assert chargeback.timeline[-1].actor == Actor(role="platform", id="disputes")
    assert len(disputes.published.of_type("chargeback.opened", subject)) == 1
    # stripe-mock answered the SDK's update of this dispute, echoing the evidence it was sent.
    doc = await disputes.doc(opened["id"])
    assert doc["gateway_answer"]["id"] == opened["id"] and refund_id in doc["gateway_answer"]["evidence_text"]
    assert "submission" not in doc

    async def released() -> bool:  # the relay empties the outbox right after publishing
        return not (await disputes.doc(opened["id"])).get("outbox")

    await disputes.wait_until(released, message="outbox not released")


async def test_unsigned_badly_signed_old_and_replayed_deliveries_are_refused_and_change_nothing(disputes):
    order = await disputes.delivered()
    opened = dispute(order.payment.reference)
    body = stripe_event("charge.dispute.created", opened)
    refusals = {
        "unsigned": None,
        "bad_signature": sign(body, secret="whsec_not_ours"),
        "too_old": sign(body, at=int(time.time()) - disputes.settings.stripe_webhook_tolerance_s - 30),
    }
    for reason, signature in refusals.items():
        answer = await disputes.webhook(body, signature)
        assert answer.status_code == 400, reason
        assert answer.headers["content-type"].startswith("application/problem+json")
        problem = answer.json()
        assert problem["reason"] == reason and problem["errors"][0]["field"] == "Stripe-Signature"
    tampered = body.replace(b"product_not_received", b"fraudulent")
    assert (await disputes.webhook(tampered, sign(body))).json()["reason"] == "bad_signature"
    assert await disputes.doc(opened["id"]) is None
    assert await disputes.db["stripe_deliveries"].count_documents({}) == 0

    signature = sign(body)
    assert (await disputes.webhook(body, signature)).status_code == 200
    replay = await disputes.webhook(body, signature)
    assert replay.status_code == 400 and replay.json()["reason"] == "replayed"
    await disputes.events_of("chargeback.opened", chargeback_id(opened["id"]))
    assert (await disputes.doc(opened["id"]))["version"] == 1


async def test_other_stripe_events_are_acknowledged_and_ignored(disputes):
    body = stripe_event("charge.refunded", {"id": "ch_1", "object": "charge"})
    answer = await disputes.webhook(body, sign(body))
    assert answer.status_code == 200 and answer.json()["outcome"] == "ignored"
    assert await disputes.db["chargebacks"].count_documents({}) == 0


@pytest.mark.parametrize(("gateway_status", "outcome"), [("won", "won"), ("lost", "lost")])
async def test_a_closed_dispute_is_won_or_lost_once(disputes, gateway_status, outcome):
    order = await disputes.delivered()
    opened = dispute(order.payment.reference)
    body = stripe_event("charge.dispute.created", opened)
    await disputes.webhook(body, sign(body))
    updated = {
        **opened,
        "status": "under_review",
        "evidence_details": {"due_by": opened["evidence_details"]["due_by"] + 3600},
    }
    body = stripe_event("charge.dispute.updated", updated)
    assert (await disputes.webhook(body, sign(body))).json()["outcome"] == "handled"
    doc = await disputes.doc(opened["id"])
    assert doc["gateway_status"] == "under_review" and doc["status"] == "needs_response" and doc["version"] == 2
    closed = {**opened, "status": gateway_status}
    for _ in range(2):  # the second is another event closing the same dispute: no second outcome
        body = stripe_event("charge.dispute.closed", closed)
        assert (await disputes.webhook(body, sign(body))).status_code == 200
    [event] = await disputes.events_of(f"chargeback.{outcome}", chargeback_id(opened["id"]))
    assert event.data["status"] == outcome and event.sequence == 3
    assert (await disputes.doc(opened["id"]))["version"] == 3


async def test_the_seller_submits_evidence_to_stripe_once_and_others_see_nothing(disputes):
    order = await disputes.delivered()
    opened = dispute(order.payment.reference)
    body = stripe_event("charge.dispute.created", opened)
    await disputes.webhook(body, sign(body))
    cb_id = chargeback_id(opened["id"])
    path = f"/v1/chargebacks/{cb_id}"
    evidence = {"carrier": "UPS", "tracking_number": "1Z999AA10123456784", "text": "Delivered to the door."}

    # Another seller's chargeback does not exist for them; a buyer may not give evidence at all (403).
    for (role, sub), status in ((("seller", "s-2"), 404), (("buyer", order.buyer.id), 403)):
        assert (await disputes.http.get(path, headers=disputes.token(role, sub))).status_code == 404
        answer = await disputes.http.post(f"{path}/evidence", json=evidence, headers=disputes.token(role, sub))
        assert answer.status_code == status and answer.headers["content-type"].startswith("application/problem")
    listed = await disputes.http.get("/v1/chargebacks", headers=disputes.token("seller", "s-2"))
    assert listed.json()["items"] == []
    # A system gives evidence only for a named seller or agent, never as itself.
    bare = await disputes.http.post(f"{path}/evidence", json=evidence, headers=disputes.token("service", "crm"))
    assert bare.status_code == 403 and "X-Acting-For" in bare.json()["detail"]
    seller = disputes.token("seller", "s-1")
    assert (await disputes.http.get(path, headers=seller)).json()["status"] == "needs_response"
    empty = await disputes.http.post(f"{path}/evidence", json={}, headers=seller)
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "text"
    misspelt = await disputes.http.post(f"{path}/evidence", json=evidence | {"tracking_numbr": "1Z"}, headers=seller)
    assert misspelt.status_code == 422 and "tracking_numbr" in misspelt.text  # refused, not silently dropped

    answer = await disputes.http.post(f"{path}/evidence", json=evidence, headers=seller)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "under_review" and answer.json()["evidence"]["carrier"] == "UPS"
    [event] = await disputes.events_of("chargeback.evidence_submitted", cb_id)
    assert event.data["timeline"][-1]["actor"] == {"role": "seller", "id": "s-1"} and not event.data["automatic"]
    doc = await disputes.doc(opened["id"])
    assert "Delivered to the door." in doc["gateway_answer"]["evidence_text"]
    again = await disputes.http.post(f"{path}/evidence", json=evidence, headers=seller)
    assert again.status_code == 409 and again.json()["status_now"] == "under_review"
    agent = await disputes.http.get(path, headers=disputes.token("agent", "a-1"))
    assert agent.status_code == 200 and agent.json()["version"] == 2


async def test_after_the_sellers_deadline_only_an_agent_may_answer_and_after_the_gateways_no_one(disputes):
    order = await disputes.delivered()
    opened = dispute(order.payment.reference)  # Stripe's deadline: 14 days; the seller's: 7
    body = stripe_event("charge.dispute.created", opened)
    await disputes.webhook(body, sign(body))
    path = f"/v1/chargebacks/{chargeback_id(opened['id'])}/evidence"
    evidence = {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}

    disputes.clock.advance(timedelta(days=7, seconds=1))
    late = await disputes.http.post(path, json=evidence, headers=disputes.token("seller", "s-1"))
    assert late.status_code == 409 and "the seller's evidence was due by" in late.json()["detail"]
    assert late.json()["status_now"] == "needs_response"
    assert (await disputes.doc(opened["id"]))["version"] == 1  # nothing recorded, nothing submitted

    disputes.clock.advance(timedelta(days=7))  # past Stripe's own deadline too
    agent = await disputes.http.post(path, json=evidence, headers=disputes.token("agent", "a-1"))
    assert agent.status_code == 409 and "the gateway's deadline" in agent.json()["detail"]
    disputes.clock.advance(timedelta(days=-1))  # within it, an agent still answers
    agent = await disputes.http.post(path, json=evidence, headers=disputes.token("agent", "a-1"))
    assert agent.status_code == 200, agent.text
    assert agent.json()["status"] == "under_review"


async def test_evidence_recorded_before_a_crash_is_submitted_by_the_retry_job(disputes):
    order = await disputes.delivered()
    opened = dispute(order.payment.reference)
    body = stripe_event("charge.dispute.created", opened)
    await disputes.webhook(body, sign(body))
    desk = disputes.app.state.chargebacks
    chargeback, _ = await desk.store.get(chargeback_id(opened["id"]))
    # What a seller's request left behind when its process died before calling Stripe.
    submission = Submission(
        Evidence(text="Shipped on time."), Actor(role="seller", id="s-1"), False, "key-1", NOW + timedelta(seconds=60)
    )
    assert await desk.store.record_submission(chargeback, submission)
    assert await desk.retry_stalled(10) == 0  # its lease runs: the submitter may still be calling
    seller = disputes.token("seller", "s-1")
    busy = await disputes.http.post(
        f"/v1/chargebacks/{chargeback.chargeback_id}/evidence", json={"text": "x"}, headers=seller
    )
    assert busy.status_code == 409
    disputes.clock.advance(timedelta(minutes=2))
    assert await desk.retry_stalled(10) == 1
    assert await desk.retry_stalled(10) == 0
    [event] = await disputes.events_of("chargeback.evidence_submitted", chargeback.chargeback_id)
    assert event.data["evidence"]["text"] == "Shipped on time."


async def test_chargebacks_are_listed_newest_first_by_page_and_filter(disputes):
    order = await disputes.delivered()
    ids = []
    for reason in ("fraudulent", "general", "duplicate"):
        opened = dispute(order.payment.reference, reason=reason)
        body = stripe_event("charge.dispute.created", opened)
        await disputes.webhook(body, sign(body))
        ids.append(chargeback_id(opened["id"]))
        disputes.clock.advance(timedelta(minutes=1))
    seller = disputes.token("seller", "s-1")
    first = (await disputes.http.get("/v1/chargebacks", params={"limit": 2}, headers=seller)).json()
    assert [c["chargeback_id"] for c in first["items"]] == ids[::-1][:2] and first["next_cursor"]
    rest = await disputes.http.get(
        "/v1/chargebacks", params={"limit": 2, "cursor": first["next_cursor"]}, headers=seller
    )
    assert [c["chargeback_id"] for c in rest.json()["items"]] == ids[:1] and rest.json()["next_cursor"] is None
    fraud = await disputes.http.get(
        "/v1/chargebacks", params={"category": "fraud"}, headers=disputes.token("agent", "a")
    )
    assert [c["chargeback_id"] for c in fraud.json()["items"]] == ids[:1]
    by_order = await disputes.http.get(
        "/v1/chargebacks", params={"order_id": order.order_id, "status": "needs_response"}, headers=seller
    )
    assert len(by_order.json()["items"]) == 3
    assert (await disputes.http.get("/v1/chargebacks", headers=disputes.token("buyer", order.buyer.id))).json()[
        "items"
    ] == []


async def test_old_deliveries_are_forgotten_and_a_late_redelivery_still_changes_nothing(disputes):
    order = await disputes.delivered()
    opened = dispute(order.payment.reference)
    body = stripe_event("charge.dispute.created", opened)
    await disputes.webhook(body, sign(body))
    await disputes.events_of("chargeback.opened", chargeback_id(opened["id"]))
    await disputes.app.state.chargeback_job.run_once()
    assert await disputes.db["stripe_deliveries"].count_documents({}) == 1  # still within Stripe's redelivery
    disputes.clock.advance(timedelta(days=8))
    await disputes.app.state.chargeback_job.run_once()
    assert await disputes.db["stripe_deliveries"].count_documents({}) == 0
    # Handled again as a new delivery: the chargeback of that dispute exists, so nothing changes.
    assert (await disputes.webhook(body, sign(body))).json()["outcome"] == "handled"
    assert (await disputes.doc(opened["id"]))["version"] == 1
    assert len(disputes.published.of_type("chargeback.opened", chargeback_id(opened["id"]))) == 1


async def test_two_replicas_taking_deliveries_of_one_dispute_at_once_change_it_once(disputes):
    order = await disputes.delivered(lines=[("L1", 1, 2000)], shipping=0, refunded=2000)
    opened = dispute(order.payment.reference)
    subject = chargeback_id(opened["id"])
    replica = create_app(disputes.settings, disputes.clock)
    async with LifespanManager(replica, startup_timeout=20, shutdown_timeout=20):
        transport = httpx.ASGITransport(app=replica)
        async with httpx.AsyncClient(transport=transport, base_url="http://disputes-2") as other:

            async def deliver(client: httpx.AsyncClient, event_type: str, data: dict[str, Any]) -> int:
                body = stripe_event(event_type, data)  # each its own Stripe event
                headers = {"Stripe-Signature": sign(body), "Content-Type": "application/json"}
                return (await client.post("/v1/webhooks/stripe", content=body, headers=headers)).status_code

            clients = [disputes.http, other] * 3
            created = await asyncio.gather(*(deliver(c, "charge.dispute.created", opened) for c in clients))
            assert created == [200] * 6
            await disputes.events_of("chargeback.evidence_submitted", subject)
            closed = {**opened, "status": "won"}
            assert await asyncio.gather(*(deliver(c, "charge.dispute.closed", closed) for c in clients)) == [200] * 6
            await disputes.events_of("chargeback.won", subject)
    doc = await disputes.doc(opened["id"])
    assert doc["version"] == 3 and doc["status"] == "won" and "submission" not in doc
    for event_type in ("chargeback.opened", "chargeback.evidence_submitted", "chargeback.won"):
        assert len({e.id for e in disputes.published.of_type(event_type, subject)}) == 1, event_type


async def test_evidence_sent_while_stripe_is_away_is_accepted_and_submitted_when_it_answers(disputes):
    order = await disputes.delivered()
    opened = dispute(order.payment.reference)
    body = stripe_event("charge.dispute.created", opened)
    await disputes.webhook(body, sign(body))
    subject = chargeback_id(opened["id"])
    # A replica whose way to Stripe is down (nothing listens on port 9).
    cut_off = create_app(disputes.settings.model_copy(update={"stripe_api_base": "http://127.0.0.1:9"}), disputes.clock)
    async with LifespanManager(cut_off, startup_timeout=20, shutdown_timeout=20):
        transport = httpx.ASGITransport(app=cut_off)
        async with httpx.AsyncClient(transport=transport, base_url="http://disputes-2") as other:
            answer = await other.post(
                f"/v1/chargebacks/{subject}/evidence",
                json={"text": "Delivered."},
                headers=disputes.token("seller", "s-1"),
            )
    assert answer.status_code == 202 and answer.json()["status"] == "needs_response"
    assert (await disputes.doc(opened["id"]))["submission"]["evidence"]["text"] == "Delivered."
    disputes.clock.advance(timedelta(minutes=2))  # the submission's lease runs out
    assert await disputes.app.state.chargebacks.retry_stalled(10) == 1
    [event] = await disputes.events_of("chargeback.evidence_submitted", subject)
    assert event.data["evidence"]["text"] == "Delivered." and event.data["timeline"][-1]["actor"]["id"] == "s-1"


async def test_evidence_stripe_refuses_is_not_kept_and_may_be_sent_again(disputes):
    order = await disputes.delivered()
    opened = dispute(order.payment.reference)
    body = stripe_event("charge.dispute.created", opened)
    await disputes.webhook(body, sign(body))
    subject = chargeback_id(opened["id"])
    path, seller = f"/v1/chargebacks/{subject}/evidence", disputes.token("seller", "s-1")
    # A replica Stripe refuses (stripe-mock answers 401 to a key that is not a test key).
    refused_by = create_app(disputes.settings.model_copy(update={"stripe_api_key": "not-a-key"}), disputes.clock)
    async with LifespanManager(refused_by, startup_timeout=20, shutdown_timeout=20):
        transport = httpx.ASGITransport(app=refused_by)
        async with httpx.AsyncClient(transport=transport, base_url="http://disputes-2") as other:
            answer = await other.post(path, json={"text": "Delivered."}, headers=seller)
    assert answer.status_code == 409 and answer.json()["type"].endswith("gateway-declined")
    doc = await disputes.doc(opened["id"])
    assert "submission" not in doc and "401" in doc["submission_error"] and doc["status"] == "needs_response"
    again = await disputes.http.post(path, json={"text": "Delivered."}, headers=seller)
    assert again.status_code == 200 and again.json()["status"] == "under_review"
    assert len(await disputes.events_of("chargeback.evidence_submitted", subject)) == 1
