"""A-to-z claims paid by the refunds service, through the real broker, store and an HTTP gateway.

`claim.granted` and `claim.seller_responded` (with a refund) open one refund of kind `claim`, paying
what the claim asks capped by what is left of the order; with nothing left it fails
`already_refunded` without a gateway call (docs/product.md §6).
"""

from __future__ import annotations

import uuid

import pytest

from services.refunds import domain
from shared.models import ALREADY_REFUNDED, Refund, RefundKind
from tests.integration.refunds.conftest import RefundsService
from tests.unit.refunds.builders import make_order
from tests.unit.refunds.claim_builders import contested_claim, granted_claim, refunded_by_seller

pytestmark = pytest.mark.integration


async def refund_of(service: RefundsService, refund_id: str) -> Refund:
    doc = await service.refund_doc(refund_id)
    assert doc is not None, f"no refund {refund_id}"
    return Refund.model_validate(doc)


async def refund_everything(service: RefundsService, order_id: str, key: str = "all") -> None:
    """The seller refunds the whole order directly (HTTP), before any claim."""
    headers = service.token("seller", "s-1") | {"Idempotency-Key": key}
    response = await service.http.post("/v1/refunds", json={"order_id": order_id}, headers=headers)
    assert response.status_code == 201 and response.json()["status"] == "issued", response.text


async def test_a_granted_claim_is_paid_once_and_a_second_copy_changes_nothing(service, published, stripe_stub):
    order = await service.delivered(lines=[("L1", 1, 3000)], shipping=599)  # paid 3599
    claim = granted_claim(order, 2000, service.clock.now())
    refund_id = f"rf_{claim.claim_id}"
    event = await service.send_claim("claim.granted", claim)

    await service.wait_until(lambda: published.of_type("refund.issued", refund_id), message="no refund.issued")
    [issued] = published.of_type("refund.issued", refund_id)
    assert (issued.data["kind"], issued.data["claim_id"], issued.data["amount"]["amount"]) == (
        "claim",
        claim.claim_id,
        2000,
    )
    [post] = stripe_stub.posts()
    assert (post.idempotency_key, post.params["amount"]) == (refund_id, "2000")
    assert (post.params["metadata[claim_id]"], post.params["metadata[refund_id]"]) == (claim.claim_id, refund_id)
    refund = await refund_of(service, refund_id)
    assert (refund.status, refund.kind, refund.claim_id, refund.return_id) == (
        "issued",
        RefundKind.CLAIM,
        claim.claim_id,
        None,
    )
    assert (refund.breakdown.other_concession.amount, refund.breakdown.lines, refund.automatic) == (2000, [], True)

    # The same event again (a redelivery) and a copy under its own id (a re-publish).
    await service.send_claim("claim.granted", claim, event_id=event.id)
    again = await service.send_claim("claim.granted", claim)
    await service.wait_until(lambda: service.handled_ids[event.id] >= 2 and service.handled(again.id), message="copies")

    assert len(stripe_stub.posts()) == 1
    assert (await refund_of(service, refund_id)).version == refund.version
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"], ledger["available"]) == (2000, 0, 1599)
    assert len({e.id for e in published.of_type("refund.issued")}) == 1
    assert published.of_type("refund.failed") == [] and published.of_type("return.refunded") == []


async def test_a_seller_who_answers_a_claim_with_a_refund_pays_it_and_a_contest_pays_nothing(
    service, published, stripe_stub
):
    order = await service.delivered(lines=[("L1", 2, 1500)], shipping=0)
    contest = contested_claim(order, 1000, service.clock.now())
    contested = await service.send_claim("claim.seller_responded", contest)
    claim = refunded_by_seller(order, 1200, service.clock.now())
    await service.send_claim("claim.seller_responded", claim)

    refund_id = f"rf_{claim.claim_id}"
    await service.wait_until(lambda: published.of_type("refund.issued", refund_id), message="no refund.issued")
    await service.wait_until(lambda: service.handled(contested.id), message="the contest was not handled")
    refund = await refund_of(service, refund_id)
    assert (refund.amount.amount, refund.actor.role, refund.actor.id, refund.automatic) == (
        1200,
        "seller",
        "s-1",
        False,
    )
    assert [post.params["amount"] for post in stripe_stub.posts()] == ["1200"]
    assert await service.db["refunds"].count_documents({}) == 1  # nothing for the contest


async def test_an_order_refunded_in_full_fails_the_claim_already_refunded_without_a_gateway_call(
    service, published, stripe_stub
):
    order = await service.delivered(lines=[("L1", 1, 3000)], shipping=599)
    await refund_everything(service, order.order_id)
    posts_before = len(stripe_stub.posts())
    claim = granted_claim(order, 3599, service.clock.now())
    await service.send_claim("claim.granted", claim)

    refund_id = f"rf_{claim.claim_id}"
    await service.wait_until(lambda: published.of_type("refund.failed", refund_id), message="no refund.failed")
    [failed] = published.of_type("refund.failed", refund_id)
    assert (failed.data["kind"], failed.data["claim_id"], failed.data["failure_reason"]) == (
        "claim",
        claim.claim_id,
        ALREADY_REFUNDED,
    )
    assert len(stripe_stub.posts()) == posts_before == 1  # the direct refund's call only
    refund = await refund_of(service, refund_id)
    assert (refund.status, refund.gateway, refund.attempts) == ("failed", None, 0)
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"], ledger["available"]) == (3599, 0, 0)
    assert published.of_type("refund.issued", refund_id) == []


async def test_a_claim_bigger_than_what_is_left_pays_what_is_left(service, published, stripe_stub):
    order = await service.delivered(lines=[("L1", 1, 3000), ("L2", 1, 1000)], shipping=0)  # paid 4000
    headers = service.token("seller", "s-1") | {"Idempotency-Key": "part"}
    body = {"order_id": order.order_id, "lines": [{"line_id": "L1", "quantity": 1}]}
    assert (await service.http.post("/v1/refunds", json=body, headers=headers)).status_code == 201
    claim = granted_claim(order, 2500, service.clock.now())
    await service.send_claim("claim.granted", claim)

    refund_id = f"rf_{claim.claim_id}"
    await service.wait_until(lambda: published.of_type("refund.issued", refund_id), message="no refund.issued")
    refund = await refund_of(service, refund_id)
    assert (refund.amount.amount, refund.breakdown.other_concession.amount, refund.breakdown.total.amount) == (
        1000,
        1000,
        1000,
    )
    assert [post.params["amount"] for post in stripe_stub.posts()] == ["3000", "1000"]
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["available"]) == (4000, 0)


async def test_a_claim_refund_that_lost_part_of_the_order_meanwhile_pays_the_rest_or_nothing(service, stripe_stub):
    """Between opening a claim's refund and reserving it, a concurrent refund of the order took part
    of what was left (here: held by a reservation): the payer shrinks it to the rest; when nothing
    is left it fails already_refunded without a gateway call."""
    order = await service.delivered(lines=[("L1", 1, 3000)], shipping=0)
    store, payer, now = service.app.state.store, service.app.state.refunds.payer, service.clock.now()
    opened = []
    for amount in (2500, 800):
        claim = granted_claim(order, amount, now)
        refund = domain.for_claim(claim, order, amount, now=now)
        key = domain.gateway_key(refund.refund_id, 0)
        assert await store.insert(refund, payment=order.payment, idempotency_key=key, now=now)
        opened.append(refund)
    await store.ledgers.reserve(order.order_id, "rf_concurrent", 1000)  # 2000 left

    paid = await payer.pay(opened[0].refund_id)
    assert (paid.status, paid.amount.amount, paid.breakdown.other_concession.amount, paid.version) == (
        "issued",
        2000,
        2000,
        3,  # opened, capped, issued
    )
    assert [(post.idempotency_key, post.params["amount"]) for post in stripe_stub.posts()] == [
        (opened[0].refund_id, "2000")
    ]
    nothing_left = await payer.pay(opened[1].refund_id)
    assert (nothing_left.status, nothing_left.failure_reason, nothing_left.amount.amount) == (
        "failed",
        ALREADY_REFUNDED,
        800,
    )
    assert len(stripe_stub.posts()) == 1
    ledger = await service.ledger(order.order_id)
    assert (ledger["refunded"], ledger["reserved"], ledger["available"]) == (2000, 1000, 0)


async def test_a_claim_before_its_order_is_paid_once_the_order_arrives(service, published):
    order = make_order(lines=[("L1", 1, 900)])
    claim = granted_claim(order, 900, service.clock.now(), claim_id=f"clm_{uuid.uuid4().hex}")
    await service.send_claim("claim.granted", claim)  # fails (no order yet) and is retried by the bus
    await service.deliver(order)
    refund_id = f"rf_{claim.claim_id}"
    await service.wait_until(lambda: published.of_type("refund.issued", refund_id), message="no refund")
    assert (await refund_of(service, refund_id)).amount.amount == 900
