"""Facts: what the metrics service keeps of each return, refund and delivered order.

One fact per aggregate, derived from the latest event's full state (event-carried state). Every
figure is computed from facts at query time, so a duplicate or late event can never be counted
twice, and the projections can be rebuilt from facts alone. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from typing import Any

from services.metrics.resolution_facts import OfferMade, ReceivedUnits, resolution_fields, resolution_from_document
from shared.models import Order, Refund, RefundStatus, Return, same_named


@dataclass(frozen=True)
class ReturnedUnits:
    sku: str
    quantity: int
    reason_code: str
    fault: str


@dataclass(frozen=True)
class ReturnFact:
    return_id: str
    version: int
    order_id: str
    seller_id: str
    buyer_id: str
    marketplace: str
    status: str
    in_policy: bool
    created_at: datetime
    updated_at: datetime
    response_due_at: datetime
    responded_at: datetime | None = None
    authorized_at: datetime | None = None
    rejected_at: datetime | None = None
    closed_at: datetime | None = None
    shipped_at: datetime | None = None
    received_at: datetime | None = None
    expired_at: datetime | None = None
    refunded_at: datetime | None = None
    platform_authorized: bool = False
    late_response: bool = False
    invalid_rejection: bool = False
    negative_feedback: bool = False
    lines: tuple[ReturnedUnits, ...] = field(default_factory=tuple)
    # How it is resolved (resolution_facts.py); a fact stored before these fields reads as a plain refund.
    resolution: str = "refund"
    replacement_status: str | None = None
    replacement_shipped_at: datetime | None = None
    replacement_unavailable_at: datetime | None = None
    replaced_at: datetime | None = None
    offers: tuple[OfferMade, ...] = field(default_factory=tuple)
    received: tuple[ReceivedUnits, ...] = field(default_factory=tuple)

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def dissatisfied(self) -> bool:
        """Amazon-style: one return counts once, however many of the three problems it has."""
        return self.late_response or self.invalid_rejection or self.negative_feedback


@dataclass(frozen=True)
class RefundFact:
    refund_id: str
    version: int
    kind: str
    return_id: str | None
    order_id: str
    seller_id: str
    buyer_id: str
    marketplace: str
    status: str
    amount: int
    currency: str
    automatic: bool
    created_at: datetime
    due_at: datetime | None = None
    issued_at: datetime | None = None
    # Return postage the shipping insurer refunds with it (`breakdown.insured_return_shipping`), in
    # `currency`: not part of `amount`. A fact stored before the field reads 0.
    insured_return_shipping: int = 0

    @property
    def issued(self) -> bool:
        return self.status == RefundStatus.ISSUED and self.issued_at is not None

    @property
    def on_time(self) -> bool | None:
        """None when the refund had no deadline (returnless and direct refunds)."""
        if self.due_at is None or self.issued_at is None:
            return None
        return self.issued_at <= self.due_at


@dataclass(frozen=True)
class DeliveredUnits:
    sku: str
    quantity: int


@dataclass(frozen=True)
class DeliveryFact:
    order_id: str
    sequence: int
    seller_id: str
    buyer_id: str
    marketplace: str
    delivered_at: datetime
    lines: tuple[DeliveredUnits, ...] = field(default_factory=tuple)


# The fields a ReturnFact takes from the return as they are there.
_AS_ON_THE_RETURN = (
    *("return_id", "version", "order_id", "marketplace", "in_policy", "created_at", "updated_at", "response_due_at"),
    *("authorized_at", "rejected_at", "closed_at", "shipped_at", "received_at", "expired_at", "refunded_at"),
)


def return_fact(ret: Return) -> ReturnFact:
    authorization = ret.authorization
    platform_authorized = bool(authorization and authorization.late)
    # The platform answers at the deadline on the seller's behalf; that answer is the response time.
    responded_at = ret.responded_at or (ret.authorized_at if platform_authorized else None)
    late = platform_authorized or (responded_at is not None and responded_at > ret.response_due_at)
    return ReturnFact(
        **same_named(ret, _AS_ON_THE_RETURN),
        seller_id=ret.seller.id,
        buyer_id=ret.buyer.id,
        status=str(ret.status),
        responded_at=responded_at,
        platform_authorized=platform_authorized,
        late_response=late,
        invalid_rejection=bool(ret.rejection and ret.rejection.invalid),
        negative_feedback=bool(ret.feedback and not ret.feedback.resolved),
        lines=tuple(
            ReturnedUnits(
                sku=line.sku, quantity=line.quantity, reason_code=str(line.reason_code), fault=str(line.fault)
            )
            for line in ret.lines
        ),
        **resolution_fields(ret),
    )


def refund_fact(refund: Refund) -> RefundFact:
    insured = refund.breakdown.insured_return_shipping
    return RefundFact(
        refund_id=refund.refund_id,
        version=refund.version,
        kind=str(refund.kind),
        return_id=refund.return_id,
        order_id=refund.order_id,
        seller_id=refund.seller.id,
        buyer_id=refund.buyer.id,
        marketplace=refund.marketplace,
        status=str(refund.status),
        amount=refund.amount.amount,
        currency=refund.amount.currency,
        automatic=refund.automatic,
        created_at=refund.created_at,
        # Only a received item starts the refund deadline; a returnless refund's `due_at` is the
        # refunds service's own schedule (pay at once), not a deadline it could meet.
        due_at=refund.due_at if refund.received_at is not None else None,
        issued_at=refund.issued_at,
        # refunds only shows it in the refund's own currency (services/refunds/policy.py)
        insured_return_shipping=insured.amount if insured and insured.currency == refund.amount.currency else 0,
    )


def delivery_fact(order: Order, sequence: int = 0) -> DeliveryFact:
    return DeliveryFact(
        order_id=order.order_id,
        sequence=sequence,
        seller_id=order.seller.id,
        buyer_id=order.buyer.id,
        marketplace=order.marketplace,
        delivered_at=order.delivered_at,
        lines=tuple(DeliveredUnits(sku=line.sku, quantity=line.quantity) for line in order.lines),
    )


# ---- documents ------------------------------------------------------------------------------
# Facts are stored as plain documents keyed by the aggregate id; `lines` are sub-documents.


def as_dict(obj: Any) -> dict[str, Any]:
    """`dataclasses.asdict` without its deepcopy of every leaf: a fact's leaves are immutable
    (str, int, bool, datetime, None), so they can be shared; nested dataclasses and containers are
    converted as asdict converts them."""
    return {f.name: _as_value(getattr(obj, f.name)) for f in fields(obj)}


def _as_value(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return as_dict(value)
    if isinstance(value, tuple | list):
        return type(value)(_as_value(item) for item in value)
    if isinstance(value, dict):
        return {key: _as_value(item) for key, item in value.items()}
    return value


def to_document(fact: ReturnFact | RefundFact | DeliveryFact) -> dict[str, Any]:
    doc = as_dict(fact)
    key = {ReturnFact: "return_id", RefundFact: "refund_id", DeliveryFact: "order_id"}[type(fact)]
    doc["_id"] = doc[key]
    if isinstance(fact, ReturnFact):
        # Every transition of a return happens by this instant: a period query needs only it and created_at.
        moments = [v for v in doc.values() if isinstance(v, datetime)]
        moments += [o[k] for o in doc["offers"] for k in ("made_at", "decided_at") if o[k] is not None]
        doc["last_event_at"] = max(moments)
    return doc


def _plain(doc: dict[str, Any], kind: type) -> dict[str, Any]:
    """The fact's own fields; anything a store adds for its queries is left out."""
    names = {f.name for f in fields(kind)}
    return {k: v for k, v in doc.items() if k in names}


def return_from_document(doc: dict[str, Any]) -> ReturnFact:
    data = _plain(doc, ReturnFact)
    data["lines"] = tuple(ReturnedUnits(**line) for line in data.get("lines", ()))
    return ReturnFact(**data | resolution_from_document(data))


def refund_from_document(doc: dict[str, Any]) -> RefundFact:
    return RefundFact(**_plain(doc, RefundFact))


def delivery_from_document(doc: dict[str, Any]) -> DeliveryFact:
    data = _plain(doc, DeliveryFact)
    data["lines"] = tuple(DeliveredUnits(**line) for line in data.get("lines", ()))
    return DeliveryFact(**data)
