"""Resolution figures on a hand-made week: keep-it offers, replacements, dispositions, store credit."""

from __future__ import annotations

import pytest

from services.metrics.facts import return_fact, return_from_document, to_document
from services.metrics.figures import Period, overview, seller_metrics
from services.metrics.resolution_facts import store_credit_fact
from shared.models import ItemCondition as C
from shared.models import ReasonCode as R
from shared.money import Money
from shared.resolution_models import Disposition, OfferStatus
from tests.unit.metrics.builders import at, authorized, requested, shipped
from tests.unit.metrics.resolution_builders import (
    credit,
    offer_decided,
    offer_made,
    received_as,
    replaced,
    replacement_ordered,
    replacement_shipped,
    replacement_unavailable,
    replacing,
)

WEEK = Period(at(0), at(7))


def _ret(return_id: str, created: float, seller_id: str = "s1", replace: bool = False, **kwargs):
    ret = requested(return_id, buyer_id="b1", seller_id=seller_id, created_at=at(created), **kwargs)
    return authorized(replacing(ret) if replace else ret, at(created, 1))


def scenario():
    returns = []
    # r1: an offer made and accepted in the week.
    returns.append(offer_decided(offer_made(_ret("r1", 0), at(1), "o1", 1500), at(2), OfferStatus.ACCEPTED))
    # r2: one offer declined, a second one expired, both in the week.
    r2 = offer_decided(offer_made(_ret("r2", 1), at(1, 2), "o2a", 800), at(1, 5), OfferStatus.DECLINED)
    returns.append(offer_decided(offer_made(r2, at(2), "o2b", 600), at(5), OfferStatus.EXPIRED))
    # r3: an EUR offer made before the week, accepted in it (counted accepted, not made).
    r3 = offer_made(_ret("r3", -3, currency="EUR"), at(-2), "o3", 900)
    returns.append(offer_decided(r3, at(0, 3), OfferStatus.ACCEPTED))
    # r4: made in the week, accepted at its (exclusive) end: made, not accepted in it; in the rate, accepted.
    returns.append(offer_decided(offer_made(_ret("r4", 5), at(6), "o4", 100), at(7), OfferStatus.ACCEPTED))
    # r5: a replacement asked, shipped, the item received (restocked): replaced.
    r5 = replacement_shipped(
        replacement_ordered(_ret("r5", 1, replace=True, lines=[("SKU-A", 1, R.DEFECTIVE)]), at(1, 2)), at(2)
    )
    r5 = received_as(r5, at(3), [(1, C.SELLABLE, Disposition.RESTOCK)], due=False)
    returns.append(replaced(r5, at(3)))
    # r6: a replacement asked, the seller has none left.
    returns.append(replacement_unavailable(_ret("r6", 2, replace=True), at(4)))
    # r7: asked before the week, shipped in it, not back yet.
    returns.append(replacement_shipped(replacement_ordered(_ret("r7", -1, replace=True), at(-1, 2)), at(1)))
    # r8: received in the week: 2 of 3 SKU-A restocked... all that came; SKU-B refurbished; SKU-C never came.
    r8 = shipped(
        _ret("r8", 0, lines=[("SKU-A", 3, R.DEFECTIVE), ("SKU-B", 1, R.NO_LONGER_NEEDED), ("SKU-C", 1, R.DEFECTIVE)]),
        at(1),
    )
    returns.append(
        received_as(
            r8,
            at(2),
            [(2, C.SELLABLE, Disposition.RESTOCK), (1, C.OPENED, Disposition.REFURBISH), (0, C.MISSING, None)],
        )
    )
    # r9: received after the week: its units do not count.
    returns.append(
        received_as(_ret("r9", 3, lines=[("SKU-A", 4, R.DEFECTIVE)]), at(8), [(4, C.SELLABLE, Disposition.RESTOCK)])
    )
    # x1: another seller's offer, accepted; and its replacement.
    x1 = offer_decided(offer_made(_ret("x1", 1, seller_id="s2"), at(1), "ox", 5000), at(1, 1), OfferStatus.ACCEPTED)
    returns.append(x1)
    facts = [return_fact(r) for r in returns]
    entries = [
        credit("g1", at(1), 1050, bonus=50),
        credit("g2", at(3), 300, currency="EUR"),
        credit("g3", at(2), 999, seller_id="s2"),
        credit("g4", at(7), 10),  # at the week's end: outside
        credit("d1", at(2), 400, debit=True),
    ]
    return facts, [store_credit_fact(e) for e in entries]


@pytest.fixture(scope="module")
def s1():
    returns, entries = scenario()
    return seller_metrics("s1", returns, [], [], WEEK, target=0.1, reasons=3, credit=entries)


def test_offers_count_what_happened_in_the_period(s1):
    offers = s1.resolutions.offers
    assert (offers.made, offers.accepted, offers.declined, offers.expired) == (4, 2, 1, 1)


def test_acceptance_rate_is_of_the_offers_made_in_the_period(s1):
    # Made in the week: o1 (accepted), o2a, o2b, o4 (accepted at the week's end); o3 was made before it.
    rate = s1.resolutions.offers.acceptance_rate
    assert (rate.count, rate.of, rate.rate) == (2, 4, 0.5)


def test_amount_settled_without_a_return_is_the_accepted_offers_per_currency(s1):
    assert s1.resolutions.offers.settled_without_return == [
        Money(amount=900, currency="EUR"),
        Money(amount=1500, currency="USD"),
    ]


def test_replacements_asked_shipped_unavailable_and_replaced(s1):
    r = s1.resolutions.replacements
    assert (r.asked, r.shipped, r.unavailable, r.replaced) == (2, 2, 1, 1)
    assert s1.returns_by_status["replaced"] == 1


def test_store_credit_granted_per_currency_bonus_included_for_the_seller(s1):
    assert s1.resolutions.store_credit_granted == [
        Money(amount=300, currency="EUR"),
        Money(amount=1050, currency="USD"),
    ]


def test_restock_rate_is_units_restocked_over_units_received_in_the_period(s1):
    rates = {r.sku: (r.units_received, r.units_restocked, r.restock_rate) for r in s1.sku_return_rates}
    # SKU-A: 2 of r8 and 1 of r5 came back, all restocked (r9's 4 came after the week); SKU-B: 1,
    # refurbished; SKU-C never arrived (quantity 0): nothing received, no rate.
    assert rates["SKU-A"] == (3, 3, 1.0)
    assert rates["SKU-B"] == (1, 0, 0.0)
    assert rates["SKU-C"] == (0, 0, None)


def test_overview_covers_every_seller_and_the_credit_spent():
    returns, entries = scenario()
    o = overview(returns, [], WEEK, target=0.1, reasons=3, flagged_buyers=0, credit=entries)
    offers = o.resolutions.offers
    assert (offers.made, offers.accepted, offers.acceptance_rate.rate) == (5, 3, 3 / 5)
    assert offers.settled_without_return == [Money(amount=900, currency="EUR"), Money(amount=6500, currency="USD")]
    assert o.resolutions.store_credit_granted == [
        Money(amount=300, currency="EUR"),
        Money(amount=2049, currency="USD"),
    ]
    assert o.store_credit_spent == [Money(amount=400, currency="USD")]


def test_a_period_without_resolutions_has_zeros_and_no_rate():
    returns, entries = scenario()
    empty = seller_metrics("nobody", returns, [], [], WEEK, target=0.1, reasons=3, credit=entries)
    assert empty.resolutions.offers.acceptance_rate.rate is None
    assert empty.resolutions.offers.made == 0 and empty.resolutions.store_credit_granted == []


def test_the_fact_keeps_offers_replacement_and_receipt_and_reads_back():
    returns, _ = scenario()
    for fact in returns:
        doc = to_document(fact)
        assert return_from_document(doc) == fact
        times = [o.decided_at or o.made_at for o in fact.offers]
        assert doc["last_event_at"] >= max([fact.updated_at, *times])
    r5 = next(f for f in returns if f.return_id == "r5")
    assert (r5.resolution, r5.replacement_status, r5.replaced_at) == ("replacement", "shipped", at(3))
    assert [(u.sku, u.quantity, u.disposition) for u in r5.received] == [("SKU-A", 1, "restock")]


def test_a_fact_stored_before_resolutions_reads_as_a_plain_refund():
    fact = return_fact(_ret("old", 1))
    doc = {k: v for k, v in to_document(fact).items() if k not in ("resolution", "offers", "received")}
    old = return_from_document(doc)
    assert old == fact and old.resolution == "refund" and old.offers == () and old.received == ()
