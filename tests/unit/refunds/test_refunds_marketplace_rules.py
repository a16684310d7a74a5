"""Refunds under the order's marketplace (docs/product.md §13): the return-shipping insurer's line
(`breakdown.insured_return_shipping`: shown, never in the total, the amount, the cap or the gateway
call) and the store-credit bonus of the marketplace, which STORE_CREDIT_BONUS_PERCENT overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from services.refunds import domain
from services.refunds.paying import Payer
from services.refunds.policy import LineChoice, return_refund
from services.refunds.settings import Settings
from shared import marketplaces
from shared.marketplaces import UnknownMarketplace
from shared.models import Breakdown, Refund, RefundDestination, RefundStatus, Return
from shared.money import Money
from shared.postage import postage_paid_by_buyer
from tests.unit.refunds.builders import carried, make_order, make_return
from tests.unit.refunds.test_refunds_destination_payer import payer_for

NOW = datetime(2025, 7, 9, 12, tzinfo=UTC)
INSURED = 1200  # CNY 12.00, the CN marketplace's default return postage


def cn_return(**kwargs) -> tuple[Return, Money]:
    """A CN no-reason return of one line (CNY 99.00) on an unpaid label the buyer pays, insured."""
    order = make_order(currency="CNY", marketplace="CN", lines=[("L1", 2, 9900)], shipping=800)
    options = {"label": "unpaid", "paid_by": "buyer", "postage": INSURED, "insured_postage": INSURED} | kwargs
    ret = make_return(order, ("L1", 2, "NO_LONGER_NEEDED"), **options)
    return ret, carried(order, ret)


def refund_of(ret: Return, shipping: Money, status: RefundStatus, *, bonus_percent: Decimal = Decimal(0)) -> Refund:
    """The platform's refund of `ret` at NOW, its breakdown the automatic one."""
    return domain.for_return(
        ret, return_refund(ret, shipping), status=status, actor=domain.PLATFORM, now=NOW, bonus_percent=bonus_percent
    )


def cny(amount: int) -> Money:
    return Money(amount=amount, currency="CNY")


def test_the_insured_postage_is_shown_apart_and_left_out_of_the_total_and_the_amount():
    ret, shipping = cn_return()
    breakdown = return_refund(ret, shipping)
    assert (breakdown.insured_return_shipping, breakdown.total, breakdown.return_shipping_concession) == (
        cny(INSURED),
        cny(19800),  # the two units, nothing else: the buyer pays shipping, the insurer refunds it
        cny(0),
    )
    refund = refund_of(ret, shipping, RefundStatus.PENDING)
    assert (refund.amount, refund.breakdown.insured_return_shipping) == (cny(19800), cny(INSURED))


def test_without_insurance_there_is_no_insured_line():
    ret, shipping = cn_return(insured_postage=None)
    assert return_refund(ret, shipping).insured_return_shipping is None


@pytest.mark.parametrize(
    ("choices", "concession", "total"),
    [(None, None, 19800), ([LineChoice("L1", 1)], None, 9900), ([LineChoice("L1", 1)], cny(300), 10200)],
)
def test_a_sellers_manual_refund_keeps_the_insured_line_whatever_they_choose(choices, concession, total):
    ret, shipping = cn_return()
    breakdown = return_refund(ret, shipping, lines=choices, return_shipping_concession=concession)
    assert (breakdown.insured_return_shipping, breakdown.total) == (cny(INSURED), cny(total))
    due = refund_of(ret, shipping, RefundStatus.DUE)
    replaced = domain.replace(due, breakdown, domain.PLATFORM, NOW, bonus_percent=Decimal(0))
    assert (replaced.amount, replaced.breakdown.insured_return_shipping) == (cny(total), cny(INSURED))


def test_the_platforms_refund_at_the_deadline_carries_the_insured_line():
    ret, shipping = cn_return(refund_mode="manual")
    due = refund_of(ret, shipping, RefundStatus.DUE)
    taken = domain.take_over(due, NOW + timedelta(days=3))
    assert (taken.status, taken.amount, taken.breakdown.insured_return_shipping) == (
        RefundStatus.PENDING,
        cny(19800),
        cny(INSURED),
    )


def test_a_returnless_refund_or_a_foreign_currency_has_no_insured_line():
    ret, shipping = cn_return(returnless=True, label=None)
    assert return_refund(ret, shipping).insured_return_shipping is None
    ret, shipping = cn_return()
    auth = ret.authorization.model_copy(update={"insured_return_postage": Money(amount=INSURED, currency="USD")})
    assert return_refund(ret.model_copy(update={"authorization": auth}), shipping).insured_return_shipping is None


def test_insured_postage_does_not_raise_the_orders_cap_but_uninsured_postage_does():
    insured, _ = cn_return()
    assert postage_paid_by_buyer(insured) is None  # the insurer refunds it: the seller may not a second time
    uninsured, _ = cn_return(insured_postage=None)
    assert postage_paid_by_buyer(uninsured) == cny(INSURED)


async def test_the_gateway_is_asked_for_the_amount_only_and_the_cap_counts_it_only():
    ret, shipping = cn_return()
    refund = refund_of(ret, shipping, RefundStatus.PENDING)
    payer, store, gateways = payer_for(refund, available=19800 + 800)
    paid = await payer.pay(refund.refund_id)
    [request] = gateways["stripe"].requests
    assert (request.amount, paid.status, paid.breakdown.insured_return_shipping) == (
        cny(19800),
        RefundStatus.ISSUED,
        cny(INSURED),
    )
    assert (store.ledgers.settled, store.ledgers.available) == ({refund.refund_id: 19800}, 800)
    assert store.events[0].data["breakdown"]["insured_return_shipping"] == {"amount": INSURED, "currency": "CNY"}


# ---- the store-credit bonus per marketplace -------------------------------------------------------------------


@pytest.fixture
def bonus_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed marketplaces where DE gives a 5 % bonus and US none (the shipped profiles otherwise)."""
    path = tmp_path / "marketplaces.yaml"
    path.write_text("extends: shipped\nmarketplaces:\n  DE:\n    resolutions:\n      store_credit_bonus_percent: 5\n")
    monkeypatch.setattr(marketplaces, "_current", marketplaces.load(path))


def payer_of(served: marketplaces.Marketplaces) -> Payer:
    return Payer(None, {}, None, lease=timedelta(1), retry_delays_ms=[], timeout_s=1, marketplaces=served)  # type: ignore[arg-type]


def credit_refund(payer: Payer, marketplace: str, currency: str) -> Breakdown:
    order = make_order(currency=currency, marketplace=marketplace, lines=[("L1", 1, 2999)], shipping=0)
    ret = make_return(order, ("L1", 1, "DEFECTIVE")).model_copy(update={"refund_to": RefundDestination.STORE_CREDIT})
    refund = refund_of(ret, carried(order, ret), RefundStatus.PENDING, bonus_percent=payer.bonus_percent(marketplace))
    return refund.store_credit_bonus


def test_the_bonus_is_the_orders_marketplaces(bonus_file):
    payer = payer_of(Settings().served_marketplaces())
    assert payer.bonus_percent("DE") == Decimal(5)
    assert credit_refund(payer, "DE", "EUR") == Money(amount=150, currency="EUR")  # 5 % of 29.99, half-up
    assert credit_refund(payer, "US", "USD") == Money(amount=0, currency="USD")


def test_store_credit_bonus_percent_overrides_every_marketplace(bonus_file):
    payer = payer_of(Settings(store_credit_bonus_percent=Decimal("2.5")).served_marketplaces())
    assert (payer.bonus_percent("DE"), payer.bonus_percent("US"), payer.bonus_percent("CN")) == (Decimal("2.5"),) * 3
    assert credit_refund(payer, "DE", "EUR") == Money(amount=75, currency="EUR")  # 74.975 -> 75


def test_the_override_is_unset_by_default_and_an_unknown_marketplace_is_refused(bonus_file):
    assert Settings().store_credit_bonus_percent is None
    payer = payer_of(Settings().served_marketplaces())
    with pytest.raises(UnknownMarketplace) as refused:
        payer.bonus_percent("XX")
    assert refused.value.problems[0].field == "marketplace"
