"""The ledger gateway finds what an earlier round of keys paid by reading each round's key (`_id`),
and an agent's retry of a refund whose payment went through unrecorded pays nothing twice."""

from __future__ import annotations

from typing import Any

import pytest

from services.refunds.domain import gateway_key, return_refund_id
from services.refunds.gateways.base import GatewayRefund, GatewayUnavailable
from services.refunds.gateways.ledger import LedgerGateway
from shared.clock import SystemClock
from shared.models import Refund
from shared.money import Money
from tests.unit.refunds.builders import make_return

pytestmark = pytest.mark.integration


def request(refund_id: str, key_round: int) -> GatewayRefund:
    return GatewayRefund(
        refund_id=refund_id,
        idempotency_key=gateway_key(refund_id, key_round),
        payment_reference="mkt-1",
        amount=Money(amount=1500, currency="USD"),
        order_id="o-1",
        key_round=key_round,
    )


async def test_find_reads_the_keys_of_every_round_so_far(db):
    ledger = LedgerGateway(db["ledger_entries"], SystemClock())
    await ledger.ensure_indexes()
    assert await ledger.find(request("rf_a", 3)) is None

    paid_in_round_1 = await ledger.refund(request("rf_a", 1))
    assert await ledger.find(request("rf_a", 1)) == paid_in_round_1  # the round's own key (a resumed payer)
    assert await ledger.find(request("rf_a", 3)) == paid_in_round_1  # an earlier round's key
    assert await ledger.find(request("rf_a", 0)) is None  # round 1 is later than round 0

    paid_in_round_0 = await ledger.refund(request("rf_b", 0))
    assert await ledger.find(request("rf_b", 2)) == paid_in_round_0
    assert await ledger.find(request("rf_c", 2)) is None  # another refund's entries are not its own


class AnswerLost:
    """A ledger whose answer never arrives (the payer sees an outage); with `writes` the entry is
    written first (the connection cut after the write), else nothing is."""

    def __init__(self, ledger: Any, *, writes: bool) -> None:
        self.ledger, self.name, self.writes = ledger, ledger.name, writes

    async def refund(self, request: GatewayRefund) -> str:
        if self.writes:
            await self.ledger.refund(request)
        raise GatewayUnavailable("ledger: answer lost")

    async def find(self, request: GatewayRefund) -> str | None:
        return await self.ledger.find(request)

    async def close(self) -> None:
        return None


async def test_an_agent_retry_finds_the_payment_an_earlier_round_made_and_pays_nothing_more(
    service, published, wait_until
):
    gateways = service.app.state.refunds.payer.gateways
    real = gateways["ledger"]
    agent = service.token("agent", "a-1")
    order = await service.delivered(provider="ledger", reference="mkt-settlement-7")
    ret = make_return(order, ("L2", 1, "DEFECTIVE"))
    refund_id = return_refund_id(ret.return_id)

    gateways["ledger"] = AnswerLost(real, writes=False)  # round 0: nothing paid
    await service.send("return.received", ret)
    await wait_until(lambda: published.of_type("refund.failed", refund_id), message="no refund.failed")
    gateways["ledger"] = AnswerLost(real, writes=True)  # round 1: paid, but the answer is lost
    first_retry = await service.http.post(f"/v1/refunds/{refund_id}/retry", headers=agent)
    assert first_retry.status_code == 200, first_retry.text
    assert first_retry.json()["status"] == "failed"
    assert [doc["_id"] async for doc in service.db["ledger_entries"].find({})] == [gateway_key(refund_id, 1)]

    gateways["ledger"] = real  # round 2: finds round 1's payment, pays nothing more
    retried = await service.http.post(f"/v1/refunds/{refund_id}/retry", headers=agent)
    assert retried.status_code == 200, retried.text
    refund = Refund.model_validate(retried.json())
    entries = [doc async for doc in service.db["ledger_entries"].find({})]
    assert [e["_id"] for e in entries] == [gateway_key(refund_id, 1)]
    assert (refund.status, refund.gateway_reference) == ("issued", entries[0]["reference"])
    assert (await service.refund_doc(refund_id))["key_round"] == 2
    assert (await service.ledger(order.order_id))["refunded"] == refund.amount.amount
