"""The payer picks the gateway by where a refund goes before what paid the order: a refund to store
credit is paid by the gateway named `store_credit` (here a test double of the store-credit ledger's),
told whose balance, on behalf of which seller and with which bonus; the order's cap counts the amount
only. The store is an in-memory double of RefundStore's few calls the payer makes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.refunds import domain
from services.refunds.gateways import GatewayRefund
from services.refunds.order_ledger import CapExceeded
from services.refunds.paying import Payer
from services.refunds.policy import return_refund
from services.refunds.store import RefundRecord
from shared.clock import FixedClock
from shared.marketplaces import shipped
from shared.models import ALREADY_REFUNDED, Refund, RefundDestination, RefundStatus
from shared.money import Money
from tests.unit.refunds.builders import carried, make_order, make_return
from tests.unit.refunds.resolution_builders import offer_accepted

NOW = datetime(2025, 7, 9, 12, tzinfo=UTC)
STORE_CREDIT = RefundDestination.STORE_CREDIT


class RecordingGateway:
    """A gateway that pays everything and remembers each request."""

    def __init__(self, name: str) -> None:
        self.name, self.requests = name, []

    async def refund(self, request: GatewayRefund) -> str:
        self.requests.append(request)
        return f"{self.name}-{len(self.requests)}"

    async def find(self, request: GatewayRefund) -> str | None:
        return None

    async def close(self) -> None:
        return None


@dataclass
class Ledgers:
    available: int
    reserved: dict[str, int] = field(default_factory=dict)
    settled: dict[str, int] = field(default_factory=dict)

    async def reserve(self, order_id: str, refund_id: str, amount: int) -> None:
        if amount > self.available:
            raise CapExceeded(order_id, self.available)
        self.available -= amount
        self.reserved[refund_id] = amount

    async def settle(self, order_id: str, refund_id: str, amount: int) -> None:
        self.settled[refund_id] = self.reserved.pop(refund_id)

    async def release(self, order_id: str, refund_id: str) -> None:
        self.available += self.reserved.pop(refund_id, 0)


@dataclass
class Store:
    ledgers: Ledgers
    records: dict[str, RefundRecord] = field(default_factory=dict)
    events: list[Any] = field(default_factory=list)

    async def claim(self, refund_id: str, now: datetime, until: datetime) -> RefundRecord | None:
        record = self.records.get(refund_id)
        return record if record is not None and record.refund.status == RefundStatus.PENDING else None

    async def get(self, refund_id: str) -> RefundRecord | None:
        return self.records.get(refund_id)

    async def extend_lease(self, refund: Refund, held: datetime | None, until: datetime) -> bool:
        return True

    async def save(self, version: int, refund: Refund, *, extra: dict[str, Any] | None = None) -> bool:
        return await self.commit(version, refund, extra=extra) is not None

    async def commit(
        self, version: int, refund: Refund, *, events: Any = (), extra: Any = None, lease: Any = None
    ) -> dict | None:
        record = self.records[refund.refund_id]
        if record.refund.version != version:
            return None
        self.records[refund.refund_id] = replace(record, refund=refund)
        self.events.extend(events)
        return {}


def payer_for(refund: Refund, available: int, *, with_store_credit: bool = True) -> tuple[Payer, Store, dict]:
    order = make_order()
    store = Store(Ledgers(available))
    store.records[refund.refund_id] = RefundRecord(refund, order.payment, refund.refund_id, 0, None)
    gateways = {"stripe": RecordingGateway("stripe")}
    if with_store_credit:
        gateways["store_credit"] = RecordingGateway("store_credit")
    payer = Payer(
        store,  # type: ignore[arg-type]
        gateways,  # type: ignore[arg-type]
        FixedClock(NOW),
        lease=timedelta(seconds=30),
        retry_delays_ms=[],
        timeout_s=5,
        # The marketplace's bonus as STORE_CREDIT_BONUS_PERCENT=2.5 would set it (Settings.served_marketplaces).
        marketplaces=shipped().overridden(resolutions={"store_credit_bonus_percent": Decimal("2.5")}),
    )
    return payer, store, gateways


def return_refund_to(refund_to: RefundDestination) -> Refund:
    order = make_order(lines=[("L1", 2, 1999)], shipping=0)  # paid by stripe
    ret = make_return(order, ("L1", 2, "DEFECTIVE")).model_copy(update={"refund_to": refund_to})
    breakdown = return_refund(ret, carried(order, ret))
    return domain.for_return(
        ret, breakdown, status=RefundStatus.PENDING, actor=domain.PLATFORM, now=NOW, bonus_percent=Decimal("2.5")
    )


async def test_a_refund_to_store_credit_is_paid_by_the_store_credit_gateway_with_buyer_seller_and_bonus():
    refund = return_refund_to(STORE_CREDIT)
    payer, store, gateways = payer_for(refund, available=3998)
    paid = await payer.pay(refund.refund_id)

    assert gateways["stripe"].requests == []
    [request] = gateways["store_credit"].requests
    assert (request.amount, request.bonus, request.buyer, request.seller_id) == (
        Money(amount=3998, currency="USD"),
        Money(amount=100, currency="USD"),  # 2.5 % of 39.98, 99.95 cents rounded half-up
        refund.buyer,
        "s-1",
    )
    assert (request.refund_id, request.idempotency_key, request.return_id) == (
        refund.refund_id,
        refund.refund_id,
        refund.return_id,
    )
    assert (paid.status, paid.gateway, paid.gateway_reference, paid.destination) == (
        RefundStatus.ISSUED,
        "store_credit",
        "store_credit-1",
        STORE_CREDIT,
    )
    # The order's cap counts the amount only: all of it was available, the bonus is not the seller's.
    assert (store.ledgers.settled, store.ledgers.available) == ({refund.refund_id: 3998}, 0)
    assert [e.type for e in store.events] == ["refund.issued", "return.refunded"]
    assert store.events[0].data["store_credit_bonus"] == {"amount": 100, "currency": "USD"}


async def test_a_refund_to_the_original_payment_goes_to_the_orders_provider():
    refund = return_refund_to(RefundDestination.ORIGINAL_PAYMENT)
    payer, _store, gateways = payer_for(refund, available=3998)
    paid = await payer.pay(refund.refund_id)
    assert gateways["store_credit"].requests == []
    [request] = gateways["stripe"].requests
    assert (request.amount.amount, request.bonus, paid.gateway) == (3998, None, "stripe")


async def test_store_credit_without_its_gateway_fails_naming_the_destination():
    refund = return_refund_to(STORE_CREDIT)
    payer, _store, gateways = payer_for(refund, available=3998, with_store_credit=False)
    failed = await payer.pay(refund.refund_id)
    assert (failed.status, failed.failure_reason) == (
        RefundStatus.FAILED,
        "no payment gateway for destination 'store_credit'",
    )
    assert gateways["stripe"].requests == []


async def test_an_offer_to_store_credit_beyond_what_is_left_is_capped_with_its_bonus():
    order = make_order(lines=[("L1", 1, 4000)])
    refund = domain.for_offer(
        offer_accepted(order, 1500, refund_to=STORE_CREDIT), order, 1500, now=NOW, bonus_percent=Decimal("2.5")
    )
    payer, store, gateways = payer_for(refund, available=1001)  # another refund took the rest meanwhile
    paid = await payer.pay(refund.refund_id)
    [request] = gateways["store_credit"].requests
    assert (request.amount.amount, request.bonus.amount) == (1001, 25)  # 25.025
    assert (paid.status, paid.amount.amount, paid.store_credit_bonus.amount, paid.version) == (
        RefundStatus.ISSUED,
        1001,
        25,
        3,  # opened, capped, issued
    )
    assert store.ledgers.available == 0


async def test_an_offer_with_nothing_left_fails_already_refunded_without_a_gateway_call():
    order = make_order(lines=[("L1", 1, 4000)])
    refund = domain.for_offer(offer_accepted(order, 1500), order, 1500, now=NOW, bonus_percent=Decimal(0))
    payer, store, gateways = payer_for(refund, available=0)
    failed = await payer.pay(refund.refund_id)
    assert (failed.status, failed.failure_reason, failed.gateway, failed.attempts) == (
        RefundStatus.FAILED,
        ALREADY_REFUNDED,
        None,
        0,
    )
    assert gateways["stripe"].requests == [] == gateways["store_credit"].requests
    assert [e.type for e in store.events] == ["refund.failed"]
