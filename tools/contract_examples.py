"""Realistic example events, one per event type: published in docs/asyncapi.yaml and checked
by tests/contract against the payload schemas and the models."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from shared.events import EVENT_TYPES, new_event
from shared.models import (
    Actor,
    Address,
    Authorization,
    Breakdown,
    BuyerFlag,
    Closure,
    Fault,
    Feedback,
    ItemCondition,
    LabelType,
    Notification,
    Order,
    OrderLine,
    Party,
    Payment,
    PolicySnapshot,
    ReasonCode,
    Receipt,
    ReceivedLine,
    Refund,
    RefundKind,
    RefundLine,
    RefundStatus,
    RefundSummary,
    Rejection,
    Return,
    ReturnLine,
    ReturnStatus,
    Seller,
    Shipment,
    TimelineEntry,
)
from shared.money import Money
from tools import dispute_examples, resolution_examples

EXAMPLE_TIME = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)


def _usd(amount: int) -> Money:
    return Money(amount=amount, currency="USD")


def example_order() -> Order:
    return Order(
        order_id="ord-1001",
        marketplace="US",
        currency="USD",
        buyer=Party(id="b-42", name="Ada Buyer", email="ada@example.com", locale="en"),
        seller=Seller(
            id="s-7",
            name="Gadget Shop",
            email="support@gadget.example",
            locale="en",
            return_address=Address(line1="1 Dock Rd", city="Newark", region="NJ", postal_code="07102", country="US"),
        ),
        lines=[
            OrderLine(
                line_id="l-1",
                sku="SKU-HEADPHONES",
                title="Wireless headphones",
                category="electronics",
                quantity=1,
                unit_price=_usd(5999),
            )
        ],
        shipping_paid=_usd(499),
        ordered_at=EXAMPLE_TIME - timedelta(days=6),
        delivered_at=EXAMPLE_TIME - timedelta(days=2),
        payment=Payment(provider="stripe", reference="pi_3MtwBwLkdIwHu7ix28a3tqPa"),
    )


def example_return(event_type: str) -> Return:
    order = example_order()
    created = EXAMPLE_TIME - timedelta(hours=1)
    line = order.lines[0]
    data: dict[str, Any] = dict(
        return_id="ret_5f1c0a4e9b8d4e6f8a7b6c5d4e3f2a1b",
        order_id=order.order_id,
        marketplace="US",
        currency="USD",
        status=ReturnStatus.REQUESTED,
        version=1,
        buyer=order.buyer,
        seller=order.seller,
        lines=[
            ReturnLine(
                line_id=line.line_id,
                sku=line.sku,
                title=line.title,
                category=line.category,
                unit_price=line.unit_price,
                quantity=1,
                reason_code=ReasonCode.DEFECTIVE,
                fault=Fault.SELLER,
                comment="Left ear cup is silent.",
            )
        ],
        fault=Fault.SELLER,
        in_policy=True,
        policy=PolicySnapshot(refund_mode="auto", restocking_fee_percent=Decimal(0)),
        whole_order=True,
        created_at=created,
        updated_at=created,
        response_due_at=created + timedelta(hours=48),
        timeline=[
            TimelineEntry(
                status=ReturnStatus.REQUESTED, action="request", actor=Actor(role="buyer", id="b-42"), at=created
            )
        ],
    )
    authorization = Authorization(
        label_type=LabelType.PREPAID,
        carrier="UPS",
        tracking_number="1Z999AA10123456784",
        return_shipping_paid_by=Fault.SELLER,
        ship_by=created + timedelta(days=30),
    )
    steps = {  # event type -> status and the parts of the aggregate that event adds
        "return.authorized": (
            ReturnStatus.AUTHORIZED,
            {
                "authorization": authorization,
                "authorized_at": EXAMPLE_TIME,
                "responded_at": EXAMPLE_TIME,
                "ship_by": authorization.ship_by,
            },
        ),
        "return.rejected": (
            ReturnStatus.REJECTED,
            {
                "rejection": Rejection(reason_code="OUTSIDE_WINDOW", invalid=False),
                "rejected_at": EXAMPLE_TIME,
                "responded_at": EXAMPLE_TIME,
            },
        ),
        "return.closed": (ReturnStatus.CLOSED, {"closure": Closure(code="BUYER_WITHDREW"), "closed_at": EXAMPLE_TIME}),
        "return.shipped": (
            ReturnStatus.SHIPPED,
            {
                "authorization": authorization,
                "shipment": Shipment(carrier="UPS", tracking_number="1Z999AA10123456784"),
                "shipped_at": EXAMPLE_TIME,
            },
        ),
        "return.received": (
            ReturnStatus.RECEIVED,
            {
                "authorization": authorization,
                "receipt": Receipt(lines=[ReceivedLine(line_id="l-1", quantity=1, condition=ItemCondition.SELLABLE)]),
                "received_at": EXAMPLE_TIME,
                "refund_due_at": EXAMPLE_TIME + timedelta(days=2),
            },
        ),
        "return.expired": (ReturnStatus.EXPIRED, {"authorization": authorization, "expired_at": EXAMPLE_TIME}),
        "return.feedback_received": (
            ReturnStatus.REFUNDED,
            {
                "refund": RefundSummary(refund_id="rf_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", amount=_usd(6498)),
                "refunded_at": EXAMPLE_TIME - timedelta(days=1),
                "feedback": Feedback(resolved=True, at=EXAMPLE_TIME),
            },
        ),
    }
    steps.update(resolution_examples.return_steps(EXAMPLE_TIME, authorization))
    status, extra = steps.get(event_type, (ReturnStatus.REQUESTED, {}))
    data.update(extra, status=status, version=2 if extra else 1, updated_at=EXAMPLE_TIME if extra else created)
    return Return(**data)


def example_refund() -> Refund:
    order = example_order()
    zero = _usd(0)
    return Refund(
        refund_id="rf_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
        kind=RefundKind.RETURN,
        return_id="ret_5f1c0a4e9b8d4e6f8a7b6c5d4e3f2a1b",
        order_id=order.order_id,
        marketplace="US",
        currency="USD",
        buyer=order.buyer,
        seller=order.seller,
        status=RefundStatus.ISSUED,
        version=3,
        amount=_usd(6498),
        breakdown=Breakdown(
            lines=[
                RefundLine(line_id="l-1", quantity=1, unit_price=_usd(5999), subtotal=_usd(5999), restocking_fee=zero)
            ],
            items=_usd(5999),
            restocking_fee=zero,
            outbound_shipping=_usd(499),
            return_shipping_concession=zero,
            other_concession=zero,
            total=_usd(6498),
        ),
        automatic=True,
        actor=Actor(role="platform", id="refunds"),
        received_at=EXAMPLE_TIME - timedelta(hours=3),
        due_at=EXAMPLE_TIME + timedelta(days=2),
        issued_at=EXAMPLE_TIME,
        gateway="stripe",
        gateway_reference="re_3MtwBwLkdIwHu7ix0Xq8iXXH",
        attempts=1,
        created_at=EXAMPLE_TIME - timedelta(hours=3),
        updated_at=EXAMPLE_TIME,
    )


def _example_model(model: type[BaseModel], event_type: str) -> tuple[BaseModel, str]:
    disputes = dispute_examples.example(model, event_type, EXAMPLE_TIME)
    if disputes is not None:
        return disputes
    credit = resolution_examples.example(model, event_type, EXAMPLE_TIME, example_order().buyer)
    if credit is not None:
        return credit
    if issubclass(model, Order):
        return example_order(), "ord-1001"
    if issubclass(model, Return):
        data = example_return(event_type)
        return data, data.return_id
    if issubclass(model, Refund):
        refund = example_refund()
        if event_type == "refund.failed":
            refund = refund.model_copy(
                update={
                    "status": RefundStatus.FAILED,
                    "issued_at": None,
                    "gateway_reference": None,
                    "attempts": 4,
                    "failure_reason": "card_declined",
                }
            )
        return refund, (refund.return_id or "") if event_type == "return.refunded" else refund.refund_id
    if issubclass(model, BuyerFlag):
        flagged = event_type == "buyer.flagged"
        return BuyerFlag(
            buyer_id="b-42",
            flagged=flagged,
            returns_90d=6 if flagged else 3,
            orders_90d=9,
            return_rate_90d=0.67 if flagged else 0.33,
            reason="returns_90d >= 5" if flagged else "under thresholds",
            at=EXAMPLE_TIME,
        ), "b-42"
    if issubclass(model, Notification):
        sent = event_type == "notification.sent"
        return Notification(
            notification_id="ntf_3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f",
            event_id="0f6c5a3e-8d2b-4c1e-9a7f-2b3c4d5e6f70",
            event_type="return.authorized",
            template="buyer_return_authorized",
            recipient_role="buyer",
            recipient_id="b-42",
            return_id="ret_5f1c0a4e9b8d4e6f8a7b6c5d4e3f2a1b",
            status="sent" if sent else "failed",
            attempts=1 if sent else 6,
            smtp_message_id="<ntf_3c4d@notifications.returns.example>" if sent else None,
            error=None if sent else "550 5.1.1 mailbox unavailable",
            at=EXAMPLE_TIME,
        ), "ntf_3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"
    raise LookupError(f"no example data for {model.__name__}; add one to tools/contract_examples.py")


def example_data(event_type: str) -> tuple[BaseModel, str]:
    """(data, subject) of a realistic event of this type, as an instance of its data model."""
    model = EVENT_TYPES[event_type].data
    data, subject = _example_model(model, event_type)
    return model.model_validate(data.model_dump()), subject


def example_event(event_type: str, publisher: str, external: bool = False) -> dict[str, Any]:
    """The event as published; `external`: by a system outside the platform (source `/<publisher>`)."""
    data, subject = example_data(event_type)
    event = new_event(
        event_type,
        service=publisher,
        subject=subject,
        data=data,
        sequence=getattr(data, "version", 1),
        time=EXAMPLE_TIME,
        event_id="7d3c1f9e-2b4a-4c8e-9f1d-6a5b4c3d2e1f",
    )
    payload = json.loads(event.to_json())
    if external:
        payload["source"] = f"/{publisher}"
    return payload
