"""Manual refund mode: a due refund the seller replaces, or the platform pays at the deadline."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.refunds.domain import return_refund_id
from shared.deadletters import list_dead
from shared.models import Refund
from tests.unit.refunds.builders import make_return, money

pytestmark = pytest.mark.integration


async def test_seller_replaces_the_due_refund_with_a_partial_one(service, published, stripe_stub, wait_until):
    order = await service.delivered(lines=[("L1", 3, 1500), ("L2", 1, 4999)])
    ret = make_return(
        order,
        ("L1", 3, "NO_LONGER_NEEDED"),
        refund_mode="manual",
        restocking=20,
        received=[("L1", 2, "sellable"), ("L1", 1, "used")],
    )
    event = await service.send("return.received", ret)
    await wait_until(lambda: service.handled(event.id), message="return.received not handled")
    refund_id = return_refund_id(ret.return_id)
    seller = service.token("seller", "s-1")

    due = (await service.http.get(f"/v1/refunds/{refund_id}", headers=seller)).json()
    assert (due["status"], due["amount"]["amount"]) == ("due", 4500 - 300)
    # Received Thursday 3 July (New York); Friday 4 July is a holiday: due by the end of Tuesday 8 July.
    due_local = datetime.fromisoformat(due["due_at"]).astimezone(ZoneInfo("America/New_York"))
    assert (due_local.date().isoformat(), due_local.hour) == ("2025-07-08", 23)
    assert stripe_stub.calls == []

    body = {"return_id": ret.return_id, "lines": [{"line_id": "L1", "quantity": 2}], "other_concession": money(250)}
    response = await service.http.post("/v1/refunds", json=body, headers=seller | {"Idempotency-Key": "k-1"})
    assert response.status_code == 201, response.text
    refund = Refund.model_validate(response.json())
    assert (refund.status, refund.amount.amount, refund.breakdown.restocking_fee.amount) == ("issued", 3250, 0)
    assert (refund.actor.role, refund.actor.id, refund.automatic) == ("seller", "s-1", False)

    replay = await service.http.post("/v1/refunds", json=body, headers=seller | {"Idempotency-Key": "k-1"})
    assert replay.status_code == 201 and replay.json() == response.json()
    again = await service.http.post("/v1/refunds", json=body, headers=seller | {"Idempotency-Key": "k-2"})
    assert again.status_code == 409
    assert [c.params["amount"] for c in stripe_stub.posts()] == ["3250"]
    await wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    assert Refund.model_validate(published.of_type("return.refunded")[0].data).amount.amount == 3250


async def test_at_the_deadline_the_platform_pays_the_computed_refund_once(service, published, stripe_stub, wait_until):
    service.clock.set(datetime(2025, 7, 7, 12, tzinfo=UTC))
    order = await service.delivered(lines=[("L1", 2, 1500)], shipping=0)
    ret = make_return(order, ("L1", 2, "DEFECTIVE"), refund_mode="manual")
    event = await service.send("return.received", ret)
    await wait_until(lambda: service.handled(event.id), message="return.received not handled")
    job = service.app.state.deadline_job

    service.clock.set(datetime(2025, 7, 8, 23, 30, tzinfo=ZoneInfo("America/New_York")))  # still on time
    assert await job.run_once() == (0, 0)
    service.clock.set(datetime(2025, 7, 9, 0, 5, tzinfo=ZoneInfo("America/New_York")))  # overdue
    # Two replicas run the job at the same moment: the refund is taken over and paid once.
    runs = await asyncio.gather(job.run_once(), job.run_once())
    assert sum(taken for taken, _ in runs) == 1

    refund = Refund.model_validate(await service.refund_doc(return_refund_id(ret.return_id)))
    assert (refund.status, refund.automatic, refund.actor.role, refund.amount.amount) == (
        "issued",
        True,
        "platform",
        3000,
    )
    assert len(stripe_stub.posts()) == 1
    await wait_until(lambda: published.of_type("refund.issued"), message="no refund.issued")
    assert published.of_type("refund.issued")[0].data["automatic"] is True


async def test_seller_refund_needs_a_received_return_of_their_own(service, wait_until):
    order = await service.delivered()
    ret = make_return(order, ("L1", 1, "DEFECTIVE"), refund_mode="manual")
    event = await service.send("return.received", ret)
    await wait_until(lambda: service.handled(event.id), message="return.received not handled")
    body = {"return_id": ret.return_id}

    other = await service.http.post(
        "/v1/refunds", json=body, headers=service.token("seller", "s-2") | {"Idempotency-Key": "k"}
    )
    unknown = await service.http.post(
        "/v1/refunds", json={"return_id": "ret-nope"}, headers=service.token("seller", "s-1") | {"Idempotency-Key": "k"}
    )
    assert (other.status_code, unknown.status_code) == (404, 404)
    agent = await service.http.post(
        "/v1/refunds", json=body, headers=service.token("agent", "a-1") | {"Idempotency-Key": "k"}
    )
    assert agent.status_code == 201 and agent.json()["actor"] == {"role": "agent", "id": "a-1"}


async def test_the_deadline_enforced_is_the_one_the_return_carries(service, published, wait_until):
    # The returns service owns the rule (its own number of business days); refunds keeps its date.
    service.clock.set(datetime(2025, 7, 7, 12, tzinfo=UTC))
    order = await service.delivered(lines=[("L1", 1, 1500)])
    five_days_later = datetime(2025, 7, 14, 23, 59, 59, 999000, tzinfo=ZoneInfo("America/New_York"))
    ret = make_return(order, ("L1", 1, "DEFECTIVE"), refund_mode="manual", refund_due_at=five_days_later)
    event = await service.send("return.received", ret)
    await wait_until(lambda: service.handled(event.id), message="return.received not handled")
    job = service.app.state.deadline_job

    due = Refund.model_validate(await service.refund_doc(return_refund_id(ret.return_id)))
    assert due.due_at == ret.refund_due_at
    service.clock.set(datetime(2025, 7, 10, 12, tzinfo=UTC))  # two business days are long past
    assert await job.run_once() == (0, 0)
    service.clock.set(ret.refund_due_at + timedelta(seconds=1))
    assert await job.run_once() == (1, 0)
    await wait_until(lambda: published.of_type("refund.issued"), message="no refund.issued")


async def test_a_received_return_without_its_deadline_is_parked_not_given_one(service, wait_until):
    order = await service.delivered()
    ret = make_return(order, ("L1", 1, "DEFECTIVE"), refund_mode="manual").model_copy(update={"refund_due_at": None})
    event = await service.send("return.received", ret)
    parked = await wait_until(lambda: list_dead(service.app.state.bus), message="the event is not parked")
    assert [letter.id for letter in parked] == [event.id]
    assert await service.refund_doc(return_refund_id(ret.return_id)) is None
