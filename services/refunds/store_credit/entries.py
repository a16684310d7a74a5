"""The pure rules of store credit: entry ids, the balances an entry leaves, its event.

A buyer's entries form one chain: entry `seq` n+1 is computed from the balances entry n left
(all currencies at once), so the chain is also the balance history. Ids are derived from what
makes a movement unique (the refund it pays, or the buyer's Idempotency-Key), so a retry after
a crash computes the same id and finds the first attempt's entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from services.refunds.domain import PLATFORM, SERVICE
from shared.contract_base import Actor, Party
from shared.events import CloudEvent, new_event
from shared.http import Unprocessable, field_problems
from shared.idempotency import HEADER, IdempotencyKeyReused
from shared.money import Money
from shared.resolution_models import StoreCreditEntry, StoreCreditEntryKind

_IDS = uuid.UUID("6d1f3c2e-5a0b-4f7e-9c1d-2b8a4e6f0a13")
EVENT_TYPES = {StoreCreditEntryKind.GRANT: "store_credit.granted", StoreCreditEntryKind.DEBIT: "store_credit.debited"}


class BalanceExceeded(Unprocessable):
    title, slug = "Store credit too low", "store-credit-exceeded"

    def __init__(self, balance: Money) -> None:
        super().__init__(
            **field_problems([("amount", f"exceeds the store-credit balance of {balance.amount} {balance.currency}")])
        )


def grant_id(refund_id: str) -> str:
    """The one grant a refund can make (the gateway's reference)."""
    return f"scg_{uuid.uuid5(_IDS, 'grant|' + refund_id).hex}"


def debit_id(buyer_id: str, idempotency_key: str) -> str:
    """The one debit of a buyer's Idempotency-Key (whoever sends it)."""
    return f"scd_{uuid.uuid5(_IDS, f'debit|{buyer_id}|{idempotency_key}').hex}"


def grant(
    *,
    refund_id: str,
    buyer: Party,
    amount: Money,
    bonus: Money | None,
    at: datetime,
    seller_id: str | None = None,
    return_id: str | None = None,
    order_id: str | None = None,
) -> StoreCreditEntry:
    """A refund paid as credit: `amount` plus the marketplace's `bonus` (same currency), not yet applied."""
    total = amount if bonus is None else amount + bonus  # CurrencyMismatch when they differ
    return StoreCreditEntry(
        entry_id=grant_id(refund_id),
        kind=StoreCreditEntryKind.GRANT,
        buyer_id=buyer.id,
        buyer=buyer,
        seller_id=seller_id,
        amount=total,
        bonus=bonus,
        balance=Money.zero(total.currency),  # set when applied
        refund_id=refund_id,
        return_id=return_id,
        order_id=order_id,
        actor=PLATFORM,
        at=at,
    )


def debit(
    *, buyer_id: str, idempotency_key: str, amount: Money, reference: str, note: str | None, actor: Actor, at: datetime
) -> StoreCreditEntry:
    """A checkout spending credit, not yet applied."""
    return StoreCreditEntry(
        entry_id=debit_id(buyer_id, idempotency_key),
        kind=StoreCreditEntryKind.DEBIT,
        buyer_id=buyer_id,
        amount=amount,
        balance=Money.zero(amount.currency),
        reference=reference,
        note=note,
        actor=actor,
        at=at,
    )


def apply(entry: StoreCreditEntry, balances: Mapping[str, int]) -> tuple[StoreCreditEntry, dict[str, int]]:
    """The entry with the balance it leaves, and the buyer's balances after it. A debit above the
    balance (none in that currency counts as zero) raises BalanceExceeded and changes nothing."""
    currency = entry.amount.currency
    before = balances.get(currency, 0)
    sign = 1 if entry.kind == StoreCreditEntryKind.GRANT else -1
    after = before + sign * entry.amount.amount
    if after < 0:
        raise BalanceExceeded(Money(amount=before, currency=currency))
    applied = entry.model_copy(update={"balance": Money(amount=after, currency=currency)})
    return applied, {**balances, currency: after}


def same_request(first: StoreCreditEntry, again: StoreCreditEntry) -> bool:
    """A replayed debit must ask for what the first one did (the balance is the first one's)."""
    return (first.amount, first.reference, first.note) == (again.amount, again.reference, again.note)


def check_replay(first: StoreCreditEntry, again: StoreCreditEntry) -> None:
    if first.kind == StoreCreditEntryKind.DEBIT and not same_request(first, again):
        raise IdempotencyKeyReused(f"This {HEADER} was used with a different debit; use a new key.", field=HEADER)


def event(entry: StoreCreditEntry, seq: int) -> CloudEvent:
    """`store_credit.granted` / `.debited` of an applied entry: one id per entry, so a republish
    after a crash is the same event; `sequence` is the entry's place in the buyer's chain."""
    event_type = EVENT_TYPES[entry.kind]
    return new_event(
        event_type,
        service=SERVICE,
        subject=entry.buyer_id,
        data=entry,
        sequence=seq,
        time=entry.at,
        event_id=str(uuid.uuid5(_IDS, f"{entry.entry_id}:{event_type}")),
    )


def positive_balances(balances: Mapping[str, int]) -> list[Money]:
    """The account's balances, zero ones left out, by currency."""
    return [Money(amount=amount, currency=code) for code, amount in sorted(balances.items()) if amount > 0]
