"""Resolutions besides a refund on receipt (docs/product.md §12), through the real broker and store,
paid through stripe-mock (Stripe's own mock, through the official SDK).

`return.offer_accepted` opens one refund of kind `offer` ("rf_" + the offer id) paying the offer,
capped by what is left of the order, failing `already_refunded` without a gateway call when nothing
is; once issued it announces `refund.issued` and `return.refunded`. A return being replaced is not
refunded at receipt (or at a returnless authorization), only once `return.replacement_unavailable`
says the seller cannot replace. Gateway calls are counted by the service's own metric
(`refund_gateway_calls_total`): stripe-mock keeps no record of them.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from services.refunds import domain
from services.refunds.domain import return_refund_id
from shared.models import ALREADY_REFUNDED, Refund, RefundKind
from shared.resolution_models import ReplacementStatus
from tests.integration.refunds.conftest import RefundsService
from tests.unit.refunds.builders import make_return
from tests.unit.refunds.resolution_builders import offer_accepted, replacing

pytestmark = pytest.mark.integration

STRIPE_MOCK = os.environ.get("STRIPE_API_BASE", "http://127.0.0.1:12111")


@pytest.fixture
def stripe_base() -> str:
    return STRIPE_MOCK


def stripe_calls() -> float:
    """Refunds Stripe accepted from the service (this process's metric)."""
    return REGISTRY.get_sample_value("refund_gateway_calls_total", {"gateway": "stripe", "outcome": "paid"}) or 0.0


async def refund_of(service: RefundsService, refund_id: str) -> Refund:
    doc = await service.refund_doc(refund_id)
    assert doc is not None, f"no refund {refund_id}"
    return Refund.model_validate(doc)


async def refund_directly(service: RefundsService, order_id: str, lines: list[tuple[str, int]] | None = None) -> None:
    """The seller refunds (some lines of) the order directly, before the offer is accepted."""
    headers = service.token("seller", "s-1") | {"Idempotency-Key": f"direct-{order_id}"}
    body: dict = {"order_id": order_id}
    if lines is not None:
        body["lines"] = [{"line_id": line_id, "quantity": quantity} for line_id, quantity in lines]
    response = await service.http.post("/v1/refunds", json=body, headers=headers)
    assert response.status_code == 201 and response.json()["status"] == "issued", response.text


async def test_an_accepted_offer_is_paid_once_and_ends_the_return_refunded(service, published):
    order = await service.delivered(lines=[("L1", 1, 4000)], shipping=599)
    ret = offer_accepted(order, 1500, version=4)
    refund_id = domain.offer_refund_id(ret.settlement.offer_id)
    before = stripe_calls()
    event = await service.send("return.offer_accepted", ret)

    await service.wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    refund = await refund_of(service, refund_id)
    assert (refund.status, refund.kind, refund.offer_id, refund.return_id, refund.return_version) == (
        "issued",
        RefundKind.OFFER,
        ret.settlement.offer_id,
        ret.return_id,
        4,
    )
    assert (refund.amount.amount, refund.breakdown.lines, refund.breakdown.other_concession.amount) == (1500, [], 1500)
    assert refund.gateway == "stripe" and refund.gateway_reference.startswith("re_")
    assert (refund.destination, refund.store_credit_bonus) == ("original_payment", None)
    [issued] = published.of_type("refund.issued", refund_id)
    [refunded] = published.of_type("return.refunded", ret.return_id)
    assert (issued.data["kind"], issued.data["offer_id"], refunded.data["refund_id"], refunded.sequence) == (
        "offer",
        ret.settlement.offer_id,
        refund_id,
        5,  # the return's next version
    )

    # The same event again (a redelivery) and a copy under an id of its own (a re-publish).
    await service.send("return.offer_accepted", ret, event_id=event.id)
    again = await service.send("return.offer_accepted", ret)
    await service.wait_until(lambda: service.handled_ids[event.id] >= 2 and service.handled(again.id), message="copies")
    assert stripe_calls() - before == 1  # paid once
    assert (await refund_of(service, refund_id)).version == refund.version
    assert await service.db["refunds"].count_documents({"return_id": ret.return_id}) == 1
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"], ledger["available"]) == (1500, 0, 3099)
    assert len(published.of_type("refund.issued", refund_id)) == 1
    assert len(published.of_type("return.refunded", ret.return_id)) == 1
    assert published.of_type("refund.failed") == []


async def test_an_offer_beyond_what_is_left_of_the_order_pays_the_rest(service, published):
    order = await service.delivered(lines=[("L1", 1, 3000), ("L2", 1, 1000)], shipping=0)  # paid 4000
    await refund_directly(service, order.order_id, [("L1", 1)])  # 1000 left
    ret = offer_accepted(order, 1500, lines=(("L2", 1, "NOT_AS_DESCRIBED"),))
    refund_id = domain.offer_refund_id(ret.settlement.offer_id)
    before = stripe_calls()
    await service.send("return.offer_accepted", ret)

    await service.wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    refund = await refund_of(service, refund_id)
    assert (refund.status, refund.amount.amount, refund.breakdown.total.amount) == ("issued", 1000, 1000)
    assert stripe_calls() - before == 1
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"], ledger["available"]) == (4000, 0, 0)


async def test_an_offer_on_an_order_refunded_in_full_fails_already_refunded_without_a_gateway_call(service, published):
    order = await service.delivered(lines=[("L1", 1, 3000)], shipping=599)
    await refund_directly(service, order.order_id)
    ret = offer_accepted(order, 1500)
    refund_id = domain.offer_refund_id(ret.settlement.offer_id)
    before = stripe_calls()
    await service.send("return.offer_accepted", ret)

    await service.wait_until(lambda: published.of_type("refund.failed", refund_id), message="no refund.failed")
    [failed] = published.of_type("refund.failed", refund_id)
    assert (failed.data["kind"], failed.data["offer_id"], failed.data["failure_reason"]) == (
        "offer",
        ret.settlement.offer_id,
        ALREADY_REFUNDED,
    )
    assert stripe_calls() == before  # no gateway call
    refund = await refund_of(service, refund_id)
    assert (refund.status, refund.gateway, refund.attempts) == ("failed", None, 0)
    assert published.of_type("return.refunded", ret.return_id) == []
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"], ledger["available"]) == (3599, 0, 0)


async def test_a_replacing_return_is_refunded_only_once_its_replacement_is_unavailable(service, published):
    order = await service.delivered(lines=[("L1", 1, 2500)], shipping=0)
    received = replacing(make_return(order, ("L1", 1, "DEFECTIVE"), version=5))
    before = stripe_calls()
    event = await service.send("return.received", received)
    await service.wait_until(lambda: service.handled(event.id), message="return.received not handled")
    assert await service.refund_doc(return_refund_id(received.return_id)) is None
    assert stripe_calls() == before

    # The refund deadline counted from the moment the replacement became unavailable (returns sets it).
    due = service.clock.now() + timedelta(days=2)
    unavailable = replacing(
        make_return(order, ("L1", 1, "DEFECTIVE"), return_id=received.return_id, version=6, refund_due_at=due),
        ReplacementStatus.UNAVAILABLE,
    )
    await service.send("return.replacement_unavailable", unavailable)
    await service.wait_until(
        lambda: published.of_type("return.refunded", received.return_id), message="no return.refunded"
    )
    refund = await refund_of(service, return_refund_id(received.return_id))
    assert (refund.status, refund.kind, refund.amount.amount, refund.return_version) == ("issued", "return", 2500, 6)
    assert refund.due_at == due
    assert stripe_calls() - before == 1
    assert published.of_type("return.refunded", received.return_id)[0].sequence == 7


async def test_a_replacing_returnless_return_is_refunded_once_its_replacement_is_unavailable(service, published):
    order = await service.delivered(lines=[("L1", 1, 900)], shipping=0)
    authorized = make_return(order, ("L1", 1, "DEFECTIVE"), returnless=True, status="authorized", version=2)
    before = stripe_calls()
    event = await service.send("return.authorized", replacing(authorized))
    await service.wait_until(lambda: service.handled(event.id), message="return.authorized not handled")
    assert await service.refund_doc(return_refund_id(authorized.return_id)) is None

    # Still on its way back (shipped, not returnless): the receipt will refund it, not this event.
    shipped = make_return(order, ("L1", 1, "DEFECTIVE"), status="shipped", version=3)
    shipped = replacing(
        shipped.model_copy(update={"received_at": None, "receipt": None}), ReplacementStatus.UNAVAILABLE
    )
    other = await service.send("return.replacement_unavailable", shipped)
    unavailable = replacing(authorized.model_copy(update={"version": 3}), ReplacementStatus.UNAVAILABLE)
    await service.send("return.replacement_unavailable", unavailable)

    await service.wait_until(
        lambda: published.of_type("return.refunded", authorized.return_id), message="no return.refunded"
    )
    refund = await refund_of(service, return_refund_id(authorized.return_id))
    assert (refund.status, refund.kind, refund.amount.amount) == ("issued", "returnless", 900)
    await service.wait_until(lambda: service.handled(other.id), message="the shipped one not handled")
    assert await service.refund_doc(return_refund_id(shipped.return_id)) is None
    assert stripe_calls() - before == 1
