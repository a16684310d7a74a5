"""The resolution figures of a seller's report and the overview: keep-it offers, replacements, store
credit, and what the warehouse restocks. Pure, from facts, for a half-open period like figures.py.

Counts are of what happened in the period (an offer made earlier may be accepted in it); the
acceptance rate is of the offers made in the period, so it never exceeds 1.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from services.metrics import schemas
from services.metrics.resolution_facts import StoreCreditFact
from shared.money import Money
from shared.resolution_models import Disposition, OfferStatus, Resolution, StoreCreditEntryKind

if TYPE_CHECKING:
    from services.metrics.facts import ReturnFact
    from services.metrics.figures import Period


def _per_currency(amounts: Iterable[tuple[str, int]]) -> list[Money]:
    totals: dict[str, int] = defaultdict(int)
    for currency, amount in amounts:
        totals[currency] += amount
    return [Money(amount=amount, currency=currency) for currency, amount in sorted(totals.items())]


def offer_figures(returns: Sequence[ReturnFact], period: Period) -> schemas.OfferFigures:
    offers = [offer for ret in returns for offer in ret.offers]
    made = [offer for offer in offers if offer.made_at in period]

    def decided(status: OfferStatus) -> list:
        return [offer for offer in offers if offer.status == status and offer.decided_at in period]

    accepted = decided(OfferStatus.ACCEPTED)
    taken = sum(1 for offer in made if offer.status == OfferStatus.ACCEPTED)
    return schemas.OfferFigures(
        made=len(made),
        accepted=len(accepted),
        declined=len(decided(OfferStatus.DECLINED)),
        expired=len(decided(OfferStatus.EXPIRED)),
        acceptance_rate=schemas.Rate(count=taken, of=len(made), rate=taken / len(made) if made else None),
        settled_without_return=_per_currency((offer.currency, offer.amount) for offer in accepted),
    )


def replacement_figures(returns: Sequence[ReturnFact], period: Period) -> schemas.ReplacementFigures:
    def happened(attribute: str) -> int:
        return sum(1 for r in returns if getattr(r, attribute) in period)

    return schemas.ReplacementFigures(
        asked=sum(1 for r in returns if r.resolution == Resolution.REPLACEMENT and r.created_at in period),
        shipped=happened("replacement_shipped_at"),
        unavailable=happened("replacement_unavailable_at"),
        replaced=happened("replaced_at"),
    )


def granted(entries: Iterable[StoreCreditFact], period: Period) -> list[Money]:
    return _per_currency(
        (e.currency, e.amount) for e in entries if e.kind == StoreCreditEntryKind.GRANT and e.at in period
    )


def spent(entries: Iterable[StoreCreditFact], period: Period) -> list[Money]:
    return _per_currency(
        (e.currency, e.amount) for e in entries if e.kind == StoreCreditEntryKind.DEBIT and e.at in period
    )


def resolutions(
    returns: Sequence[ReturnFact], credit: Iterable[StoreCreditFact], period: Period
) -> schemas.Resolutions:
    return schemas.Resolutions(
        offers=offer_figures(returns, period),
        replacements=replacement_figures(returns, period),
        store_credit_granted=granted(credit, period),
    )


def units_restocked(returns: Iterable[ReturnFact], period: Period) -> tuple[Counter[str], Counter[str]]:
    """Per SKU: units received in the period (lines that arrived), and of those, units restocked."""
    received: Counter[str] = Counter()
    restocked: Counter[str] = Counter()
    for ret in returns:
        if ret.received_at not in period:
            continue
        for line in ret.received:
            if line.quantity > 0:
                received[line.sku] += line.quantity
                if line.disposition == Disposition.RESTOCK:
                    restocked[line.sku] += line.quantity
    return received, restocked
