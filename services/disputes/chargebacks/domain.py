"""The Chargeback aggregate: opened from a gateway dispute, answered with evidence, closed won or lost. Pure.

A card dispute reaches us as the gateway's dispute object (`Dispute`, read from a Stripe webhook).
Each transition takes the chargeback as it stands and returns its next state (version + 1, one
more timeline step) or raises IllegalTransition; the store writes it with its event in one update.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.disputes.orders import OrderFacts
from shared.dispute_models import Chargeback, ChargebackCategory, ChargebackStatus, Evidence, Step
from shared.models import Actor, Party
from shared.money import Money, format_money

GATEWAY = "stripe"
FRAUD_REASON = "fraudulent"
# Who acts on a chargeback besides its seller and agents: the gateway reporting it, the platform.
GATEWAY_ACTOR = Actor(role="service", id=GATEWAY)
PLATFORM = Actor(role="platform", id="disputes")
_CHARGEBACK_IDS = uuid.UUID("5d7c2f1e-8a4b-4c3d-9e6f-0a1b2c3d4e5f")  # uuid5 namespace of chargeback ids
_SHORT = 200  # Evidence's ShortText limit


class IllegalTransition(Exception):
    def __init__(self, chargeback: Chargeback, action: str, reason: str | None = None) -> None:
        why = reason or f"it is {chargeback.status.value}"
        super().__init__(f"cannot {action} this chargeback: {why}")
        self.status = chargeback.status


class UnreadableDispute(ValueError):
    """The gateway's dispute object lacks what a chargeback needs."""


def _reference(value: Any) -> str | None:
    """A reference field of a Stripe object: an id, or the expanded object carrying one."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _moment(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if isinstance(seconds, int) and seconds > 0 else None


@dataclass(frozen=True)
class Dispute:
    """What the platform reads of a gateway dispute (Stripe's `dispute` object)."""

    id: str
    amount: int
    currency: str
    reason: str
    status: str
    payment_intent: str | None
    charge: str | None
    due_by: datetime | None

    @classmethod
    def from_stripe(cls, obj: Mapping[str, Any]) -> Dispute:
        try:
            dispute = cls(
                id=str(obj["id"]),
                amount=int(obj["amount"]),
                currency=str(obj["currency"]).upper(),
                reason=str(obj.get("reason") or "general"),
                status=str(obj.get("status") or ""),
                payment_intent=_reference(obj.get("payment_intent")),
                charge=_reference(obj.get("charge")),
                due_by=_moment((obj.get("evidence_details") or {}).get("due_by")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UnreadableDispute(f"dispute object: {exc}") from None
        if not dispute.id or dispute.references == ():
            raise UnreadableDispute("dispute object: no payment_intent or charge")
        return dispute

    @property
    def references(self) -> tuple[str, ...]:
        """The payment references to look the order up by, PaymentIntent first."""
        return tuple(ref for ref in (self.payment_intent, self.charge) if ref)

    @property
    def outcome(self) -> ChargebackStatus:
        """A closed dispute's outcome: only `lost` is lost (`won`, `warning_closed` and `prevented`
        leave the money with the seller)."""
        return ChargebackStatus.LOST if self.status == "lost" else ChargebackStatus.WON


def chargeback_id(dispute_id: str) -> str:
    """One chargeback per gateway dispute: the id is derived from the dispute's, so the store's
    unique `_id` refuses a second one however many deliveries race."""
    return "cbk_" + uuid.uuid5(_CHARGEBACK_IDS, f"{GATEWAY}:{dispute_id}").hex


def category_of(reason: str) -> ChargebackCategory:
    return ChargebackCategory.FRAUD if reason == FRAUD_REASON else ChargebackCategory.SERVICE


def open_chargeback(
    dispute: Dispute, facts: OrderFacts | None, reference: str, now: datetime, evidence_days: float
) -> Chargeback:
    """The chargeback of a new dispute, waiting for the seller's evidence (`facts`: the order paid
    with `reference`, None when no order is known)."""
    order = facts.order if facts else None
    return Chargeback(
        chargeback_id=chargeback_id(dispute.id),
        gateway=GATEWAY,
        gateway_dispute_id=dispute.id,
        payment_reference=reference,
        order_id=order.order_id if order else None,
        marketplace=order.marketplace if order else None,
        buyer_id=order.buyer.id if order else None,
        seller=Party.model_validate(order.seller.model_dump()) if order else None,
        amount=Money(amount=dispute.amount, currency=dispute.currency),
        reason=dispute.reason,
        category=category_of(dispute.reason),
        status=ChargebackStatus.NEEDS_RESPONSE,
        version=1,
        evidence_due_by=now + timedelta(days=evidence_days),
        gateway_due_by=dispute.due_by,
        gateway_status=dispute.status or None,
        timeline=[Step(status=ChargebackStatus.NEEDS_RESPONSE.value, action="open", actor=GATEWAY_ACTOR, at=now)],
        created_at=now,
        updated_at=now,
    )


def refunded_in_full(facts: OrderFacts | None) -> bool:
    """The order's payment was all paid back before the dispute: the platform answers by itself."""
    return facts is not None and bool(facts.refunds) and facts.payment_refunded


def refund_evidence(facts: OrderFacts) -> Evidence:
    """The platform's own evidence for a dispute on an order refunded in full: its refunds."""
    currency = facts.order.currency
    paid = [(refund_id, Money(amount=amount, currency=currency)) for refund_id, amount in sorted(facts.refunds.items())]
    listed = ", ".join(f"{refund_id} ({format_money(amount)})" for refund_id, amount in paid)
    total = format_money(Money(amount=facts.refunded, currency=currency))
    text = (
        f"Order {facts.order.order_id} was refunded in full before this dispute: {total} "
        f"of {format_money(Money(amount=facts.order.total_paid(), currency=currency))} paid, "
        f"in {len(paid)} refund(s): {listed}."
    )
    return Evidence(refund_reference=", ".join(refund_id for refund_id, _ in paid)[:_SHORT], text=text)


def _next(chargeback: Chargeback, now: datetime, step: Step | None, **changes: Any) -> Chargeback:
    timeline = [*chargeback.timeline, step] if step else chargeback.timeline
    return chargeback.model_copy(
        update={**changes, "version": chargeback.version + 1, "timeline": timeline, "updated_at": now}
    )


def check_submittable(chargeback: Chargeback, *, now: datetime | None = None, by_seller: bool = False) -> None:
    """Evidence is taken while the chargeback needs a response; given `now`, until the gateway's own
    deadline, and from the seller until theirs (`evidence_due_by`): after it an agent may still answer."""
    action = "submit evidence for"
    if chargeback.status is not ChargebackStatus.NEEDS_RESPONSE:
        raise IllegalTransition(chargeback, action)
    if now is None:
        return
    gateway_due_by = chargeback.gateway_due_by
    if gateway_due_by is not None and now > gateway_due_by:
        raise IllegalTransition(chargeback, action, f"the gateway's deadline ({gateway_due_by.isoformat()}) has passed")
    if by_seller and now > chargeback.evidence_due_by:
        due_by = chargeback.evidence_due_by.isoformat()
        raise IllegalTransition(chargeback, action, f"the seller's evidence was due by {due_by}")


def evidence_submitted(
    chargeback: Chargeback, evidence: Evidence, actor: Actor, automatic: bool, now: datetime
) -> Chargeback:
    """The gateway took the evidence: the dispute is under review."""
    check_submittable(chargeback)
    status = ChargebackStatus.UNDER_REVIEW
    note = "answered by the platform: the order was refunded in full" if automatic else None
    step = Step(status=status.value, action="submit_evidence", actor=actor, at=now, note=note)
    return _next(chargeback, now, step, status=status, evidence=evidence, automatic=automatic, submitted_at=now)


def close(chargeback: Chargeback, dispute: Dispute, now: datetime) -> Chargeback:
    """The gateway closed the dispute: won or lost (final)."""
    if chargeback.status in (ChargebackStatus.WON, ChargebackStatus.LOST):
        raise IllegalTransition(chargeback, "close")
    status = dispute.outcome
    step = Step(status=status.value, action="close", actor=GATEWAY_ACTOR, at=now, note=f"gateway: {dispute.status}")
    return _next(chargeback, now, step, status=status, closed_at=now, gateway_status=dispute.status or None)


def gateway_update(chargeback: Chargeback, dispute: Dispute, now: datetime) -> Chargeback | None:
    """`charge.dispute.updated`: the gateway's own fields, kept current (no event, no status change:
    the platform's status moves only by its own submission and by the close). None when nothing changes."""
    changes = {"gateway_due_by": dispute.due_by or chargeback.gateway_due_by, "gateway_status": dispute.status or None}
    if all(getattr(chargeback, name) == value for name, value in changes.items()):
        return None
    return _next(chargeback, now, None, **changes)
