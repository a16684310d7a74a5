"""Hand-made keep-it offers, replacements, dispositions and store-credit entries for the metrics tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.events import CloudEvent, new_event
from shared.models import Actor, ItemCondition, Receipt, ReceivedLine, Return, ReturnStatus
from shared.money import Money
from shared.resolution_models import (
    Disposition,
    Offer,
    OfferStatus,
    Replacement,
    ReplacementLine,
    ReplacementStatus,
    ReplacementTiming,
    Resolution,
    Settlement,
    StoreCreditEntry,
    StoreCreditEntryKind,
)
from tests.unit.metrics.builders import _next


def offer_made(ret: Return, when: datetime, offer_id: str, amount: int) -> Return:
    offer = Offer(
        offer_id=offer_id,
        amount=Money(amount=amount, currency=ret.currency),
        status=OfferStatus.OPEN,
        made_by=Actor(role="seller", id=ret.seller.id),
        made_at=when,
        expires_at=when + timedelta(hours=72),
    )
    return _next(ret, when, ret.status, offers=[*ret.offers, offer])


def offer_decided(ret: Return, when: datetime, status: OfferStatus) -> Return:
    """The open offer accepted, declined or expired at `when` (accepted: the return is settled)."""
    offers = [
        o.model_copy(update={"status": status, "decided_at": when}) if o.status == "open" else o for o in ret.offers
    ]
    decided = next(o for o in offers if o.decided_at == when)
    settlement = (
        Settlement(kept_item=True, offer_id=decided.offer_id, amount=decided.amount)
        if status == OfferStatus.ACCEPTED
        else ret.settlement
    )
    return _next(ret, when, ret.status, offers=offers, settlement=settlement)


def replacing(ret: Return) -> Return:
    """The return as created asking for a replacement of each line (same SKU)."""
    lines = [ReplacementLine(line_id=line.line_id, sku=line.sku, quantity=line.quantity) for line in ret.lines]
    replacement = Replacement(status=ReplacementStatus.REQUESTED, ships=ReplacementTiming.AT_RECEIPT, lines=lines)
    return ret.model_copy(update={"resolution": Resolution.REPLACEMENT, "replacement": replacement})


def _replacement(ret: Return, when: datetime, status: ReplacementStatus, **changes) -> Return:
    assert ret.replacement is not None
    replacement = ret.replacement.model_copy(update={"status": status, **changes})
    return _next(ret, when, ret.status, replacement=replacement)


def replacement_ordered(ret: Return, when: datetime) -> Return:
    return _replacement(ret, when, ReplacementStatus.ORDERED, ordered_at=when)


def replacement_shipped(ret: Return, when: datetime) -> Return:
    return _replacement(ret, when, ReplacementStatus.SHIPPED, shipped_at=when, carrier="UPS", tracking_number="1Z")


def replacement_unavailable(ret: Return, when: datetime) -> Return:
    return _replacement(ret, when, ReplacementStatus.UNAVAILABLE, unavailable_at=when)


def replaced(ret: Return, when: datetime) -> Return:
    return _next(ret, when, ReturnStatus.REPLACED, replaced_at=when)


def received_as(
    ret: Return, when: datetime, lines: list[tuple[int, ItemCondition, Disposition | None]], *, due: bool = True
) -> Return:
    """Received with, per return line in order: (quantity that came, condition, disposition)."""
    receipt = Receipt(
        lines=[
            ReceivedLine(line_id=line.line_id, quantity=quantity, condition=condition, disposition=disposition)
            for line, (quantity, condition, disposition) in zip(ret.lines, lines, strict=True)
        ]
    )
    due_at = when + timedelta(days=2) if due else None
    return _next(ret, when, ReturnStatus.RECEIVED, received_at=when, receipt=receipt, refund_due_at=due_at)


def credit(
    entry_id: str,
    when: datetime,
    amount: int,
    *,
    seller_id: str | None = "s1",
    bonus: int = 0,
    currency: str = "USD",
    debit: bool = False,
) -> StoreCreditEntry:
    money = Money(amount=amount, currency=currency)
    return StoreCreditEntry(
        entry_id=entry_id,
        kind=StoreCreditEntryKind.DEBIT if debit else StoreCreditEntryKind.GRANT,
        buyer_id="b-credit",
        seller_id=None if debit else seller_id,
        amount=money,
        bonus=None if debit else Money(amount=bonus, currency=currency),
        balance=money,
        refund_id=None if debit else f"rf-{entry_id}",
        reference="checkout-1" if debit else None,
        actor=Actor(role="service", id="checkout") if debit else Actor(role="platform", id="refunds"),
        at=when,
    )


def credit_event(entry: StoreCreditEntry) -> CloudEvent:
    event_type = "store_credit.debited" if entry.kind == StoreCreditEntryKind.DEBIT else "store_credit.granted"
    return new_event(event_type, service="refunds", subject=entry.buyer_id, data=entry, sequence=1, time=entry.at)
