"""The refunds service's answer closes a paying claim, exactly once whatever the broker redelivers:
`refund.issued` (kind claim) -> closed `paid`; `refund.failed` (kind claim, already_refunded) ->
closed `already_refunded`; any other failure leaves it paying for an agent's retry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from services.disputes import handlers
from shared.events import new_event
from shared.models import Order, Refund
from tests.integration.checks import problem
from tests.integration.returns.factories import eventually

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.claims_harness"]  # its fixtures: the service, its API, a tap, the clock
T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)


async def paying_claim(api, amount: int = 3000, refund: int = 2500) -> dict:
    """A claim the seller answered with a refund of `refund`: paying, its payment set."""
    order = await api.deliver()
    claim = await api.file(order, amount)
    body = {"kind": "refund", "amount": {"amount": refund, "currency": "USD"}}
    response = await api.act(claim["claim_id"], "respond", api.as_seller(order.seller.id), **body)
    return api.ok(response, 200)


async def contested_claim(api, amount: int) -> tuple[Order, dict]:
    """A claim for `amount` the seller contested: waiting for an agent."""
    order = await api.deliver()
    claim = await api.file(order, amount)
    contest = {"kind": "contest", "evidence": {"text": "Left at the door"}}
    api.ok(await api.act(claim["claim_id"], "respond", api.as_seller(order.seller.id), **contest), 200)
    return order, claim


async def announce(api, event_type: str, refund: dict, copies: int = 1) -> None:
    data = Refund.model_validate(refund)
    await asyncio.gather(*(api.publish(event_type, data, refund["refund_id"]) for _ in range(copies)))


async def test_refund_issued_closes_the_claim_paid_once(claims_api, disputes_tap, disputes_db):
    api = claims_api
    claim = await paying_claim(api)
    cid = claim["claim_id"]
    refund = api.claim_refund(claim, amount=2400)  # the ledger paid less than asked
    await announce(api, "refund.issued", refund, copies=2)  # two copies at once
    await announce(api, "refund.issued", refund)  # and a redelivery later
    [*_, closed] = await disputes_tap.wait_types(cid, ["claim.filed", "claim.seller_responded", "claim.closed"])
    assert closed.sequence == 3 and closed.data["status"] == "closed"
    assert closed.data["closure"]["code"] == "paid"
    assert closed.data["payment"]["paid"] == {"amount": 2400, "currency": "USD"}
    assert closed.data["payment"]["amount"] == {"amount": 2500, "currency": "USD"}
    assert closed.data["payment"]["issued_at"] == refund["issued_at"].replace("+00:00", "Z")
    assert closed.data["timeline"][-1]["actor"] == {"role": "platform", "id": "disputes"}
    # Every refund counts toward what the order had refunded, once.
    facts = await disputes_db.order_facts.find_one({"_id": claim["order_id"]})
    assert facts["refunded"] == 2400
    # The later copy has been handled once the event of a later claim's refund is out.
    marker = await paying_claim(api)
    await announce(api, "refund.issued", api.claim_refund(marker))
    await disputes_tap.wait_types(marker["claim_id"], ["claim.filed", "claim.seller_responded", "claim.closed"])
    assert disputes_tap.types(cid) == ["claim.filed", "claim.seller_responded", "claim.closed"]
    assert (await api.get(cid))["version"] == 3


async def test_already_refunded_closes_the_claim_and_other_failures_leave_it_paying(
    claims_api, disputes_tap, disputes_app
):
    api = claims_api
    nothing_left = await paying_claim(api)
    failed = api.claim_refund(nothing_left, status="failed", failure_reason="already_refunded")
    await announce(api, "refund.failed", failed, copies=2)
    types = ["claim.filed", "claim.seller_responded", "claim.closed"]
    [*_, closed] = await disputes_tap.wait_types(nothing_left["claim_id"], types)
    assert closed.data["closure"]["code"] == "already_refunded" and closed.data["payment"]["paid"] is None

    # Another failure changes nothing. Handled here by the service's own handler, not through the
    # broker, whose deliveries may overtake each other: the retry below must come after it.
    declined = await paying_claim(api)
    for reason, kind in (("card_declined", "claim"), ("already_refunded", "direct")):
        refund = api.claim_refund(declined, status="failed", failure_reason=reason, kind=kind)
        event = new_event(
            "refund.failed", service="refunds", subject="x", data=Refund.model_validate(refund), sequence=2, time=T0
        )
        await handlers.refund_failed(disputes_app.state.disputes, event, Refund.model_validate(refund))
    assert (await api.get(declined["claim_id"]))["status"] == "paying"
    # Then the agent's retry pays it: closed `paid`.
    await announce(api, "refund.issued", api.claim_refund(declined))
    [*_, closed] = await disputes_tap.wait_types(declined["claim_id"], types)
    assert closed.data["closure"]["code"] == "paid"
    assert disputes_tap.types(declined["claim_id"]) == types


async def test_a_granted_claim_is_closed_by_its_refund(claims_api, disputes_tap):
    api = claims_api
    _, claim = await contested_claim(api, 1800)
    cid = claim["claim_id"]
    granted = api.ok(await api.act(cid, "decide", api.as_agent(), outcome="grant", note="No proof of delivery"), 200)
    await announce(api, "refund.issued", api.claim_refund(granted))
    events = await disputes_tap.wait_types(
        cid, ["claim.filed", "claim.seller_responded", "claim.granted", "claim.closed"]
    )
    assert events[-1].data["closure"]["code"] == "paid" and events[-1].data["decision"]["outcome"] == "granted"


async def test_an_agent_grants_on_an_order_refunded_meanwhile_and_it_closes_already_refunded(
    claims_api, disputes_tap, disputes_db
):
    """The grant is not held to what the order still has (the refunds service is): refused there,
    the claim would stay contested on an order with nothing left, never closing."""
    api = claims_api
    order, claim = await contested_claim(api, 1800)
    cid = claim["claim_id"]
    # The seller refunds the whole order directly while the claim waits for an agent.
    total = order.total_paid()
    direct = {"payment": {"refund_id": f"rf_direct_{cid}", "amount": {"amount": total, "currency": "USD"}}}
    await announce(api, "refund.issued", api.claim_refund(claim | direct, kind="direct", claim_id=None))
    await eventually_refunded(disputes_db, order.order_id, total)

    agent = api.as_agent()
    too_much = {"amount": 1801, "currency": "USD"}  # more than the claim asks for
    problem(
        await api.act(cid, "decide", agent, outcome="grant", note="No proof", amount=too_much), 422, "amount.amount"
    )
    granted = api.ok(await api.act(cid, "decide", agent, outcome="grant", note="No proof of delivery"), 200)
    assert granted["status"] == "paying" and granted["payment"]["amount"] == {"amount": 1800, "currency": "USD"}
    # The refunds service finds nothing left on the order.
    failed = api.claim_refund(granted, status="failed", failure_reason="already_refunded")
    await announce(api, "refund.failed", failed)
    types = ["claim.filed", "claim.seller_responded", "claim.granted", "claim.closed"]
    [*_, closed] = await disputes_tap.wait_types(cid, types)
    assert closed.data["closure"]["code"] == "already_refunded" and closed.data["payment"]["paid"] is None


async def eventually_refunded(db, order_id: str, amount: int) -> None:
    async def refunded() -> bool:
        facts = await db.order_facts.find_one({"_id": order_id})
        return bool(facts) and facts.get("refunded") == amount

    await eventually(refunded, what=f"order {order_id} refunded {amount}")
