"""Refunds of resolutions (docs/product.md §12), the pure parts: an accepted offer's refund and its
cap, where a return's refund goes and the bonus on store credit, and a replacing return refunded
only once its replacement is unavailable."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from services.refunds import claim_policy, destination, domain, handlers, offer_refunds
from services.refunds.handlers import ReceivedReturn
from services.refunds.policy import return_refund
from services.refunds.refunding import Refunds
from shared.clock import FixedClock
from shared.models import Actor, RefundDestination, RefundKind, RefundStatus, Return, ReturnStatus, Settlement
from shared.money import Money
from shared.resolution_models import ReplacementStatus
from tests.unit.refunds.builders import carried, make_order, make_return
from tests.unit.refunds.claim_builders import granted_claim
from tests.unit.refunds.resolution_builders import offer_accepted, replacing

NOW = datetime(2025, 7, 9, 12, tzinfo=UTC)
STORE_CREDIT = RefundDestination.STORE_CREDIT
NONE = Decimal(0)


# ---- an accepted offer's refund -------------------------------------------------------------


def test_an_accepted_offer_is_one_refund_of_a_sum_named_after_the_offer():
    order = make_order(lines=[("L1", 1, 4000)])
    ret = offer_accepted(order, 1500, offer_id="ofr_abc", version=4)
    refund = domain.for_offer(ret, order, 1500, now=NOW, bonus_percent=NONE)
    assert (refund.refund_id, refund.kind, refund.offer_id, refund.return_id, refund.return_version) == (
        "rf_ofr_abc",
        RefundKind.OFFER,
        "ofr_abc",
        ret.return_id,
        4,
    )
    assert (refund.status, refund.amount, refund.actor, refund.automatic) == (
        RefundStatus.PENDING,
        Money(amount=1500, currency="USD"),
        Actor(role="seller", id="s-1"),  # who made the offer
        False,
    )
    b = refund.breakdown
    assert (b.lines, b.items.amount, b.other_concession.amount, b.total.amount) == ([], 0, 1500, 1500)
    assert (b.restocking_fee.amount, b.outbound_shipping.amount, b.return_shipping_concession.amount) == (0, 0, 0)
    assert (refund.destination, refund.store_credit_bonus, refund.claim_id) == (
        RefundDestination.ORIGINAL_PAYMENT,
        None,
        None,
    )
    # Issued: refund.issued and return.refunded, the latter as the return's next version.
    issued = domain.issue(refund, NOW, gateway="stripe", reference="re_1")
    assert [(e.type, e.subject, e.sequence) for e in domain.events(issued)] == [
        ("refund.issued", "rf_ofr_abc", 2),
        ("return.refunded", ret.return_id, 5),
    ]


def test_an_offer_refund_pays_what_is_left_of_the_order_at_most():
    assert claim_policy.amount_to_pay(1500, 4000) == 1500
    assert claim_policy.amount_to_pay(1500, 900) == 900
    assert claim_policy.amount_to_pay(1500, 0) == 1500  # the payer then fails it already_refunded
    order = make_order(lines=[("L1", 1, 4000)])
    refund = domain.for_offer(offer_accepted(order, 1500), order, 1500, now=NOW, bonus_percent=NONE)
    capped = domain.cap(refund, 600, NOW, bonus_percent=NONE)
    assert (capped.amount.amount, capped.breakdown.other_concession.amount, capped.breakdown.total.amount) == (
        600,
        600,
        600,
    )
    assert (capped.version, capped.kind, capped.offer_id) == (2, RefundKind.OFFER, refund.offer_id)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"settlement": None}, "no accepted offer"),
        ({"settlement": Settlement(kept_item=False, amount=Money(amount=100, currency="USD"))}, "no accepted offer"),
        ({"order_id": "o-other"}, "of order o-other"),
        ({"settlement": Settlement(kept_item=True, offer_id="ofr_1", amount=Money(amount=100, currency="EUR"))}, "EUR"),
        (
            {"settlement": Settlement(kept_item=True, offer_id="ofr_1", amount=Money(amount=0, currency="USD"))},
            "positive",
        ),
    ],
)
def test_an_offer_that_can_never_be_paid_says_why(change: dict[str, Any], reason: str):
    order = make_order()
    ret = offer_accepted(order, 1500)
    assert offer_refunds.problem(ret, order) is None
    assert reason in (offer_refunds.problem(ret.model_copy(update=change), order) or "")


# ---- destination and bonus ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "percent", "bonus"),
    [
        (1999, "USD", "2.5", 50),  # 49.975 cents
        (1250, "USD", "1", 13),  # 12.5: half-up, not to even
        (1249, "USD", "1", 12),
        (1500, "JPY", "3.33", 50),  # 49.95 yen; JPY has no minor digits
        (1235, "BHD", "2.5", 31),  # 30.875 fils; BHD has three
        (1000, "BHD", "0.05", 1),  # 0.5 fils
        (1999, "USD", "0", 0),
    ],
)
def test_the_store_credit_bonus_rounds_half_up_to_the_minor_unit(amount, currency, percent, bonus):
    money = Money(amount=amount, currency=currency)
    assert destination.bonus(money, STORE_CREDIT, Decimal(percent)) == Money(amount=bonus, currency=currency)
    assert destination.bonus(money, RefundDestination.ORIGINAL_PAYMENT, Decimal(percent)) is None


def test_a_return_refund_goes_where_its_buyer_asked_with_the_bonus_on_credit():
    order = make_order(lines=[("L1", 2, 1999)], shipping=0)
    ret = make_return(order, ("L1", 2, "DEFECTIVE")).model_copy(update={"refund_to": STORE_CREDIT})
    refund = domain.for_return(
        ret, return_refund(ret, carried(order, ret)), status=RefundStatus.DUE, actor=domain.PLATFORM, now=NOW,
        bonus_percent=Decimal("2.5"),
    )  # fmt: skip
    assert (refund.kind, refund.destination, refund.amount.amount) == (RefundKind.RETURN, STORE_CREDIT, 3998)
    assert refund.store_credit_bonus == Money(amount=100, currency="USD")  # 99.95
    assert destination.gateway_name(refund, "stripe") == "store_credit"
    # A seller's smaller refund in its place: the bonus follows the amount.
    partial = return_refund(one := make_return(order, ("L1", 1, "DEFECTIVE")), carried(order, one))
    replaced = domain.replace(refund, partial, Actor(role="seller", id="s-1"), NOW, bonus_percent=Decimal("2.5"))
    assert (replaced.amount.amount, replaced.store_credit_bonus.amount, replaced.destination) == (
        1999,
        50,
        STORE_CREDIT,
    )

    returnless = make_return(order, ("L1", 1, "NO_LONGER_NEEDED"), returnless=True, status="authorized")
    returnless = returnless.model_copy(update={"refund_to": STORE_CREDIT})
    refund = domain.for_return(
        returnless, return_refund(returnless, carried(order, returnless)), status=RefundStatus.PENDING,
        actor=domain.PLATFORM, now=NOW, bonus_percent=Decimal(10),
    )  # fmt: skip
    assert (refund.kind, refund.destination, refund.store_credit_bonus.amount) == (
        RefundKind.RETURNLESS,
        STORE_CREDIT,
        200,
    )


def test_an_offer_to_store_credit_earns_the_bonus_on_what_it_pays_after_a_cap():
    order = make_order(lines=[("L1", 1, 4000)])
    ret = offer_accepted(order, 1500, refund_to=STORE_CREDIT)
    refund = domain.for_offer(ret, order, 1500, now=NOW, bonus_percent=Decimal(5))
    assert (refund.destination, refund.store_credit_bonus.amount) == (STORE_CREDIT, 75)
    capped = domain.cap(refund, 1001, NOW, bonus_percent=Decimal(5))
    assert (capped.amount.amount, capped.store_credit_bonus.amount, capped.destination) == (1001, 50, STORE_CREDIT)


def test_direct_and_claim_refunds_always_go_to_the_original_payment():
    order = make_order(provider="ledger")
    claim = domain.for_claim(granted_claim(order, 500, NOW), order, 500, now=NOW)
    direct = domain.for_order(
        "rf_x", order, claim_policy.breakdown(order.shipping_paid), actor=domain.PLATFORM, now=NOW
    )
    store_credit_return = make_return(order).model_copy(update={"refund_to": STORE_CREDIT})
    for refund in (claim, direct):
        assert (refund.destination, refund.store_credit_bonus) == (RefundDestination.ORIGINAL_PAYMENT, None)
        assert destination.gateway_name(refund, "ledger") == "ledger"
        assert destination.of_return(refund.kind, store_credit_return) == RefundDestination.ORIGINAL_PAYMENT
    for kind in (RefundKind.RETURN, RefundKind.RETURNLESS, RefundKind.OFFER):
        assert destination.of_return(kind, store_credit_return) == STORE_CREDIT


# ---- replacing returns ----------------------------------------------------------------------


async def test_a_replacing_return_is_received_without_a_refund_deadline_and_never_refunded():
    order = make_order()
    ret = replacing(make_return(order, ("L1", 1, "DEFECTIVE")))
    assert ret.replacing() and ret.refund_due_at is None
    received = ReceivedReturn.model_validate(ret.model_dump())  # valid without a deadline
    with pytest.raises(ValidationError, match="refund_due_at"):
        ReceivedReturn.model_validate(make_return(order).model_copy(update={"refund_due_at": None}).model_dump())

    # The use case opens nothing (its store is not even read: it has none here).
    refunds = Refunds(store=None, payer=None, clock=FixedClock(NOW))  # type: ignore[arg-type]
    assert await refunds.open_for_return(received) is None
    returnless = replacing(make_return(order, returnless=True, status="authorized"))
    assert await refunds.open_for_return(returnless) is None
    unavailable = replacing(make_return(order, ("L1", 1, "DEFECTIVE")), ReplacementStatus.UNAVAILABLE)
    assert not unavailable.replacing() and unavailable.refund_due_at is not None


class Recorded:
    """Refunds as the handlers see it, recording what they open."""

    def __init__(self) -> None:
        self.opened: list[Return] = []

    async def open_for_return(self, ret: Return) -> None:
        self.opened.append(ret)


@pytest.mark.parametrize(
    ("status", "returnless", "opened"),
    [
        (ReturnStatus.RECEIVED, False, True),
        (ReturnStatus.AUTHORIZED, True, True),
        (ReturnStatus.AUTHORIZED, False, False),  # its receipt will
        (ReturnStatus.SHIPPED, False, False),
        (ReturnStatus.REQUESTED, False, False),
    ],
)
async def test_an_unavailable_replacement_refunds_a_received_or_returnless_return_now(status, returnless, opened):
    order = make_order()
    ret = make_return(order, ("L1", 1, "DEFECTIVE"), returnless=returnless, status=status.value)
    if status != ReturnStatus.RECEIVED and not returnless:
        ret = ret.model_copy(update={"received_at": None, "receipt": None, "refund_due_at": None})
    ret = replacing(ret, ReplacementStatus.UNAVAILABLE)
    refunds = Recorded()
    await handlers.return_replacement_unavailable(refunds, None, ret)  # type: ignore[arg-type]
    assert [r.return_id for r in refunds.opened] == ([ret.return_id] if opened else [])
    if opened and status == ReturnStatus.RECEIVED:
        assert isinstance(refunds.opened[0], ReceivedReturn)


async def test_an_unavailable_replacement_of_a_received_return_without_its_deadline_is_invalid():
    order = make_order()
    ret = replacing(make_return(order, ("L1", 1, "DEFECTIVE")), ReplacementStatus.UNAVAILABLE)
    broken = ret.model_copy(update={"refund_due_at": None})
    with pytest.raises(ValidationError):  # parked by the bus, like an invalid return.received
        await handlers.return_replacement_unavailable(Recorded(), None, broken)  # type: ignore[arg-type]
