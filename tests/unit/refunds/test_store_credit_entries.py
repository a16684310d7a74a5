"""The pure rules of store credit: ids, balances after an entry, replays, events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.refunds.store_credit import entries
from services.refunds.store_credit.store import slot
from shared.contract_base import Actor, Party
from shared.idempotency import IdempotencyKeyReused
from shared.money import CurrencyMismatch, Money
from shared.resolution_models import StoreCreditEntry

AT = datetime(2025, 7, 9, 16, 0, tzinfo=UTC)
BUYER = Party(id="b-1", name="Bo", email="bo@example.com")
AGENT = Actor(role="agent", id="a-1")


def usd(amount: int) -> Money:
    return Money(amount=amount, currency="USD")


def debit(amount: int, key: str = "k", reference: str = "chk-1", note: str | None = None) -> StoreCreditEntry:
    return entries.debit(
        buyer_id="b-1", idempotency_key=key, amount=usd(amount), reference=reference, note=note, actor=AGENT, at=AT
    )


def test_ids_are_derived_from_what_makes_a_movement_unique():
    assert entries.grant_id("rf_1") == entries.grant_id("rf_1") != entries.grant_id("rf_2")
    assert entries.debit_id("b-1", "k") == entries.debit_id("b-1", "k")
    assert entries.debit_id("b-1", "k") != entries.debit_id("b-2", "k")  # a key is the buyer's own
    assert entries.grant_id("rf_1").startswith("scg_") and entries.debit_id("b", "k").startswith("scd_")
    assert len(entries.grant_id("x" * 128)) <= 128


def test_a_grant_credits_the_amount_plus_the_bonus_for_the_platform():
    entry = entries.grant(refund_id="rf_1", buyer=BUYER, amount=usd(1000), bonus=usd(50), at=AT, seller_id="s-1")
    applied, after = entries.apply(entry, {"EUR": 700, "USD": 5})

    assert (applied.amount, applied.bonus, applied.balance) == (usd(1050), usd(50), usd(1055))
    assert after == {"EUR": 700, "USD": 1055}
    assert (applied.kind, applied.actor, applied.buyer_id, applied.seller_id) == (
        "grant",
        entries.PLATFORM,
        "b-1",
        "s-1",
    )
    with pytest.raises(CurrencyMismatch):
        entries.grant(refund_id="rf_1", buyer=BUYER, amount=usd(1), bonus=Money(amount=1, currency="EUR"), at=AT)


def test_a_debit_may_spend_the_whole_balance_and_never_more():
    applied, after = entries.apply(debit(1000), {"USD": 1000})
    assert applied.balance == usd(0) and after == {"USD": 0}

    with pytest.raises(entries.BalanceExceeded) as refused:
        entries.apply(debit(1001), {"USD": 1000})
    assert refused.value.status == 422
    assert refused.value.extra["errors"] == [
        {"field": "amount", "location": "body", "reason": "exceeds the store-credit balance of 1000 USD"}
    ]
    with pytest.raises(entries.BalanceExceeded, match="balance of 0 USD"):
        entries.apply(debit(1), {"EUR": 5000})  # no balance in that currency


def test_a_replayed_debit_must_ask_for_the_same_thing():
    first, _ = entries.apply(debit(300, note="n"), {"USD": 1000})
    entries.check_replay(first, debit(300, note="n"))
    for changed in (debit(301, note="n"), debit(300, reference="other", note="n"), debit(300, note="m")):
        with pytest.raises(IdempotencyKeyReused):
            entries.check_replay(first, changed)
    grant = entries.grant(refund_id="rf_1", buyer=BUYER, amount=usd(1), bonus=None, at=AT)
    entries.check_replay(
        grant, grant.model_copy(update={"amount": usd(2)})
    )  # a grant is the refund's, whatever the call


def test_the_event_of_an_entry_is_the_same_event_every_time():
    applied, _ = entries.apply(debit(300), {"USD": 1000})
    event = entries.event(applied, 7)

    assert (event.type, event.subject, event.sequence, event.time) == ("store_credit.debited", "b-1", 7, AT)
    assert event.id == entries.event(applied, 7).id
    assert StoreCreditEntry.model_validate(event.data) == applied
    grant = entries.grant(refund_id="rf_1", buyer=BUYER, amount=usd(1), bonus=None, at=AT)
    assert entries.event(grant, 1).type == "store_credit.granted"


def test_an_account_shows_positive_balances_by_currency():
    assert entries.positive_balances({"USD": 10, "EUR": 0, "BHD": 5}) == [
        Money(amount=5, currency="BHD"),
        Money(amount=10, currency="USD"),
    ]


def test_a_slot_cannot_be_faked_by_a_buyer_id():
    assert slot(12, "b-1") != slot(1, "2:b-1")
