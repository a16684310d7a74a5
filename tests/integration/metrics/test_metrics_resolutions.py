"""Keep-it offers, replacements, dispositions and store credit through the real broker into the real
store, read over HTTP: exact figures, and the same figures when every event comes twice under its id,
once more under a new id, all shuffled and taken by two replicas (a late `return.offer_made` after its acceptance, a
`store_credit.granted` redelivered)."""

from __future__ import annotations

import random
import uuid

import pytest

from shared.clock import FixedClock
from shared.events import CloudEvent
from shared.models import ItemCondition as C
from shared.models import ReasonCode as R
from shared.resolution_models import Disposition, OfferStatus
from tests.unit.metrics.builders import at, authorized, requested, return_event, shipped
from tests.unit.metrics.resolution_builders import (
    credit,
    credit_event,
    offer_decided,
    offer_made,
    received_as,
    replaced,
    replacement_ordered,
    replacement_shipped,
    replacing,
)

pytestmark = pytest.mark.integration

PERIOD = {"from": at(0).isoformat(), "to": at(14).isoformat()}


def _requested(return_id: str, day: float, lines=None, *, replace: bool = False):
    ret = requested(return_id, buyer_id="b1", seller_id="sR", created_at=at(day), lines=lines)
    return replacing(ret) if replace else ret


def script() -> list[CloudEvent]:
    out: list[CloudEvent] = []
    # r1: an offer of 1500 made and accepted (the buyer keeps the item).
    r = _requested("r1", 1)
    a = authorized(r, at(1, 2))
    made = offer_made(a, at(2), "ofr_1", 1500)
    out += [return_event(r), return_event(a), return_event(made, "return.offer_made")]
    out.append(return_event(offer_decided(made, at(3), OfferStatus.ACCEPTED), "return.offer_accepted"))
    # r2: an offer made, left to expire.
    r = _requested("r2", 1)
    a = authorized(r, at(1, 3))
    made = offer_made(a, at(2), "ofr_2", 700)
    out += [return_event(r), return_event(a), return_event(made, "return.offer_made")]
    out.append(return_event(offer_decided(made, at(5), OfferStatus.EXPIRED), "return.offer_expired"))
    # r3: a replacement, ordered at receipt, shipped: replaced. The item came back sellable: restocked.
    r = _requested("r3", 2, [("SKU-R", 1, R.DEFECTIVE)], replace=True)
    a = authorized(r, at(2, 1))
    s = shipped(a, at(3))
    got = received_as(s, at(4), [(1, C.SELLABLE, Disposition.RESTOCK)], due=False)
    ordered = replacement_ordered(got, at(4))
    sent = replacement_shipped(ordered, at(5))
    out += [return_event(r), return_event(a), return_event(s), return_event(got)]
    out += [return_event(ordered, "return.replacement_ordered"), return_event(sent, "return.replacement_shipped")]
    out.append(return_event(replaced(sent, at(5)), "return.replaced"))
    # r4: received with dispositions: 2 SKU-R restocked, 1 SKU-Q refurbished, SKU-P never came.
    r = _requested("r4", 3, [("SKU-R", 2, R.NO_LONGER_NEEDED), ("SKU-Q", 1, R.DEFECTIVE), ("SKU-P", 1, R.DEFECTIVE)])
    a = authorized(r, at(3, 1))
    got = received_as(
        a, at(6), [(2, C.SELLABLE, Disposition.RESTOCK), (1, C.OPENED, Disposition.REFURBISH), (0, C.MISSING, None)]
    )
    out += [return_event(r), return_event(a), return_event(got)]
    # Store credit: two grants of seller sR (one with a bonus), one of another seller, one checkout debit.
    out += [
        credit_event(credit("scg_1", at(6, 1), 1575, seller_id="sR", bonus=75)),
        credit_event(credit("scg_2", at(7), 400, seller_id="sR", currency="EUR")),
        credit_event(credit("scg_3", at(7), 999, seller_id="sOther")),
        credit_event(credit("scd_1", at(8), 500, debit=True)),
    ]
    return out


async def _deliver(replicas, stream: list[CloudEvent], wait_until) -> None:
    for event in stream:
        await replicas[0].publish(event)

    async def all_handled() -> bool:
        return sum([await metrics.copies_handled() for metrics in replicas]) == len(stream)

    await wait_until(all_handled, timeout=30, message=f"{len(stream)} events handled")


async def _reports(metrics) -> dict:
    return {
        "sR": await metrics.get("/v1/metrics/sellers/sR", **PERIOD),
        "own": await metrics.get("/v1/metrics/sellers/sR", role="seller", sub="sR", **PERIOD),
        "overview": await metrics.get("/v1/metrics/overview", **PERIOD),
    }


async def test_resolutions_are_counted_once_whatever_the_order_and_copies(start_metrics, wait_until):
    events = script()
    in_order = await start_metrics(FixedClock(at(20)))
    await _deliver([in_order], events, wait_until)
    # Two replicas on one queue and one database take the copies.
    shuffled = await start_metrics(FixedClock(at(20)))
    shared = shuffled.settings
    replica = await start_metrics(
        FixedClock(at(20)),
        exchange=shared.exchange,
        orders_exchange=shared.orders_exchange,
        queue_prefix=shared.queue_prefix,
        mongodb_db=shared.database_name,
    )
    again = [e.model_copy(update={"id": str(uuid.uuid4())}) for e in events]
    stream = events + events + again
    random.Random(15).shuffle(stream)
    await _deliver([shuffled, replica], stream, wait_until)
    assert await replica.copies_handled() > 0

    first, second = await _reports(in_order), await _reports(shuffled)
    assert first == second
    seller = first["sR"]
    assert seller == first["own"]
    assert seller["resolutions"] == {
        "offers": {
            "made": 2,
            "accepted": 1,
            "declined": 0,
            "expired": 1,
            "acceptance_rate": {"count": 1, "of": 2, "rate": 0.5},
            "settled_without_return": [{"amount": 1500, "currency": "USD"}],
        },
        "replacements": {"asked": 1, "shipped": 1, "unavailable": 0, "replaced": 1},
        "store_credit_granted": [{"amount": 400, "currency": "EUR"}, {"amount": 1575, "currency": "USD"}],
    }
    assert seller["returns_by_status"]["replaced"] == 1
    restock = {
        r["sku"]: (r["units_received"], r["units_restocked"], r["restock_rate"]) for r in seller["sku_return_rates"]
    }
    # SKU-A: r1's and r2's, never received.
    assert restock == {"SKU-A": (0, 0, None), "SKU-R": (3, 3, 1.0), "SKU-Q": (1, 0, 0.0), "SKU-P": (0, 0, None)}

    overview = first["overview"]
    assert overview["resolutions"]["store_credit_granted"] == [
        {"amount": 400, "currency": "EUR"},
        {"amount": 2574, "currency": "USD"},
    ]
    assert overview["store_credit_spent"] == [{"amount": 500, "currency": "USD"}]
    assert overview["resolutions"]["offers"]["made"] == 2

    # One fact per entry, however many copies came.
    for metrics in (in_order, shuffled):
        assert await metrics.db["store_credit_facts"].count_documents({}) == 4
        stored = await metrics.db["return_facts"].find_one({"_id": "r1"})
        assert [o["status"] for o in stored["offers"]] == ["accepted"]


async def test_a_seller_sees_only_their_own_store_credit(start_metrics, wait_until):
    metrics = await start_metrics(FixedClock(at(20)))
    events = [credit_event(credit("scg_x", at(2), 300, seller_id="sX"))]
    await _deliver([metrics], events, wait_until)
    mine = await metrics.get("/v1/metrics/sellers/sX", role="seller", sub="sX", **PERIOD)
    other = await metrics.get("/v1/metrics/sellers/sR", **PERIOD)
    assert mine["resolutions"]["store_credit_granted"] == [{"amount": 300, "currency": "USD"}]
    assert other["resolutions"]["store_credit_granted"] == []
