"""Claims and chargebacks follow the rules of their order's marketplace (design rule 7), against the real
servers: a DE claim gets DE's response time and reminder, a US claim US's, from one deadline job (its
per-marketplace reminder sweeps are queries the store must declare); a chargeback's evidence days are
its order's marketplace's, and the default marketplace's when the order is unknown."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.disputes.chargebacks.domain import chargeback_id
from shared import marketplaces
from shared.models import Order
from tests.integration.checks import settle
from tests.integration.disputes_chargebacks_support import dispute, sign, stripe_event
from tests.integration.returns.factories import eventually
from tests.unit.returns.builders import order_data, unique

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.claims_harness"]  # its fixtures: the service, its API, a tap, the clock

WEBHOOK_SECRET = "whsec_disputes_marketplaces"
SETTINGS = {
    "marketplaces_file": str(Path(__file__).with_name("disputes_marketplaces.yaml")),
    "default_marketplace": "DE",
    "jobs_enabled": True,
    "job_interval_s": 0.03,
    "stripe_webhook_secret": WEBHOOK_SECRET,
}


@pytest.fixture(scope="module", autouse=True)
def restored_marketplaces() -> Iterator[None]:
    """The app installs this module's marketplaces process-wide: put back what was there."""
    before = marketplaces.current()
    yield
    marketplaces.install(before)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def deliver(api: Any, marketplace: str, currency: str) -> Order:
    """A delivered order of `marketplace`, paid with a reference of its own (chargebacks find it by that)."""
    data = order_data(buyer_id=unique("b"), seller_id=unique("s"), marketplace=marketplace, currency=currency)
    data["payment"]["reference"] = unique("pi")
    order = Order.model_validate(data)
    await api.publish("order.delivered", order, order.order_id)
    await eventually(
        lambda: api.db.order_facts.find_one({"_id": order.order_id, "order": {"$exists": True}}),
        what=f"order {order.order_id} in the disputes service",
    )
    return order


async def test_each_claim_follows_its_marketplaces_deadline_and_reminder(
    claims_api, disputes_tap, disputes_clock, disputes_app
):
    api, clock = claims_api, disputes_clock
    us = await api.file(await deliver(api, "US", "USD"))
    de = await api.file(await deliver(api, "DE", "EUR"))
    deadline = {c["marketplace"]: at(c["respond_by"]) - at(c["filed_at"]) for c in (us, de)}
    assert deadline == {"US": timedelta(seconds=72), "DE": timedelta(seconds=144)}

    def types(claim: dict[str, Any]) -> list[str]:
        return disputes_tap.types(claim["claim_id"])

    clock.advance(timedelta(seconds=40))  # US: 32 s left, more than its 18 s; DE: 104 s, more than 72 s
    await settle("claim_deadlines", disputes_app)
    assert "claim.response_due_soon" not in types(us) + types(de)
    clock.advance(timedelta(seconds=20))  # US: 12 s left, reminded; DE: 84 s left, not yet
    await settle("claim_deadlines", disputes_app)
    await disputes_tap.wait_types(us["claim_id"], ["claim.filed", "claim.response_due_soon"])
    assert "claim.response_due_soon" not in types(de)
    clock.advance(timedelta(seconds=20))  # US past its deadline, granted; DE: 64 s left, inside its 72 s
    await settle("claim_deadlines", disputes_app)
    await disputes_tap.wait_types(us["claim_id"], ["claim.filed", "claim.response_due_soon", "claim.granted"])
    await disputes_tap.wait_types(de["claim_id"], ["claim.filed", "claim.response_due_soon"])
    clock.advance(timedelta(seconds=70))  # DE past its deadline
    await settle("claim_deadlines", disputes_app)
    await disputes_tap.wait_types(de["claim_id"], ["claim.filed", "claim.response_due_soon", "claim.granted"])
    assert [s["action"] for s in (await api.get(de["claim_id"]))["timeline"]] == ["file", "remind", "grant"]


async def test_chargeback_evidence_days_are_the_orders_marketplaces_else_the_default(claims_api, disputes_clock):
    api = claims_api
    us_order = await deliver(api, "US", "USD")

    async def opened(payment_intent: str) -> dict[str, Any]:
        disputed = dispute(payment_intent)
        body = stripe_event("charge.dispute.created", disputed)
        headers = {"Stripe-Signature": sign(body, WEBHOOK_SECRET), "Content-Type": "application/json"}
        api.ok(await api.client.post("/v1/webhooks/stripe", content=body, headers=headers), 200)
        path = f"/v1/chargebacks/{chargeback_id(disputed['id'])}"
        return api.ok(await api.client.get(path, headers=api.as_agent()), 200)

    now = disputes_clock.now()
    known = await opened(us_order.payment.reference)
    assert known["order_id"] == us_order.order_id and known["marketplace"] == "US"
    assert at(known["evidence_due_by"]) == now + timedelta(days=7)
    unknown = await opened(unique("pi"))  # no order paid with it: the default marketplace, DE, gives 10 days
    assert unknown["order_id"] is None and unknown["marketplace"] is None
    assert at(unknown["evidence_due_by"]) == now + timedelta(days=10)
