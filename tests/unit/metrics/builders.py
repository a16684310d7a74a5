"""Hand-made returns, refunds, orders and emails for the metrics tests (unit and integration)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from services.returns.policy import fault_of
from shared.calendar import add_business_days
from shared.events import CloudEvent, new_event
from shared.models import (
    Actor,
    Address,
    Authorization,
    Breakdown,
    Closure,
    Fault,
    Feedback,
    ItemCondition,
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
    RefundStatus,
    Rejection,
    Return,
    ReturnLine,
    ReturnStatus,
    Seller,
    Shipment,
)
from shared.money import Money

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday
_ids = count(1)


def at(days: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


def buyer(buyer_id: str) -> Party:
    return Party(id=buyer_id, name=f"Buyer {buyer_id}", email=f"{buyer_id}@buyers.example")


def seller(seller_id: str) -> Seller:
    return Seller(
        id=seller_id,
        name=f"Seller {seller_id}",
        email=f"{seller_id}@sellers.example",
        return_address=Address(line1="1 Dock St", city="Springfield", postal_code="12345", country="US"),
    )


def order(
    order_id: str,
    *,
    buyer_id: str,
    seller_id: str,
    delivered_at: datetime,
    skus: dict[str, int],
    price: int = 1000,
    currency: str = "USD",
    marketplace: str = "US",
) -> Order:
    return Order(
        order_id=order_id,
        marketplace=marketplace,
        currency=currency,
        buyer=buyer(buyer_id),
        seller=seller(seller_id),
        lines=[
            OrderLine(
                line_id=f"L{i}",
                sku=sku,
                title=sku,
                category="toys",
                quantity=qty,
                unit_price=Money(amount=price, currency=currency),
            )
            for i, (sku, qty) in enumerate(skus.items(), 1)
        ],
        shipping_paid=Money(amount=500, currency=currency),
        ordered_at=delivered_at - timedelta(days=3),
        delivered_at=delivered_at,
        payment=Payment(provider="stripe", reference="pi_test"),
    )


def requested(
    return_id: str,
    *,
    order_id: str | None = None,
    buyer_id: str,
    seller_id: str,
    created_at: datetime,
    lines: list[tuple[str, int, ReasonCode]] | None = None,
    in_policy: bool = True,
    currency: str = "USD",
) -> Return:
    lines = lines or [("SKU-A", 1, ReasonCode.DEFECTIVE)]
    return_lines = [
        ReturnLine(
            line_id=f"L{i}",
            sku=sku,
            title=sku,
            category="toys",
            unit_price=Money(amount=1000, currency=currency),
            quantity=qty,
            reason_code=reason,
            fault=fault_of(reason),
        )
        for i, (sku, qty, reason) in enumerate(lines, 1)
    ]
    fault = Fault.SELLER if any(line.fault == Fault.SELLER for line in return_lines) else Fault.BUYER
    return Return(
        return_id=return_id,
        order_id=order_id or f"o-{return_id}",
        marketplace="US",
        currency=currency,
        status=ReturnStatus.REQUESTED,
        version=1,
        buyer=buyer(buyer_id),
        seller=seller(seller_id),
        lines=return_lines,
        fault=fault,
        in_policy=in_policy,
        policy=PolicySnapshot(refund_mode="auto"),
        whole_order=False,
        created_at=created_at,
        updated_at=created_at,
        response_due_at=created_at + timedelta(hours=48),
    )


def _next(ret: Return, when: datetime, status: ReturnStatus, **changes) -> Return:
    return ret.model_copy(update={"status": status, "version": ret.version + 1, "updated_at": when, **changes})


def authorized(
    ret: Return, when: datetime, *, platform: bool = False, automatic: bool = False, returnless: bool = False
) -> Return:
    authorization = Authorization(
        return_shipping_paid_by=Fault.SELLER, returnless=returnless, automatic=automatic or platform, late=platform
    )
    return _next(
        ret,
        when,
        ReturnStatus.AUTHORIZED,
        authorized_at=when,
        authorization=authorization,
        responded_at=None if platform else when,
    )


def rejected(ret: Return, when: datetime, *, invalid: bool) -> Return:
    return _next(
        ret,
        when,
        ReturnStatus.REJECTED,
        rejected_at=when,
        responded_at=when,
        rejection=Rejection(reason_code="OUTSIDE_POLICY", invalid=invalid),
    )


def closed(ret: Return, when: datetime) -> Return:
    return _next(ret, when, ReturnStatus.CLOSED, closed_at=when, closure=Closure(code="BUYER_WITHDREW"))


def shipped(ret: Return, when: datetime) -> Return:
    return _next(
        ret, when, ReturnStatus.SHIPPED, shipped_at=when, shipment=Shipment(carrier="UPS", tracking_number="1Z")
    )


def received(ret: Return, when: datetime) -> Return:
    receipt = Receipt(
        lines=[
            ReceivedLine(line_id=line.line_id, quantity=line.quantity, condition=ItemCondition.SELLABLE)
            for line in ret.lines
        ]
    )
    return _next(
        ret,
        when,
        ReturnStatus.RECEIVED,
        received_at=when,
        receipt=receipt,
        refund_due_at=add_business_days(when, 2, ret.marketplace),
    )


def expired(ret: Return, when: datetime) -> Return:
    return _next(ret, when, ReturnStatus.EXPIRED, expired_at=when)


def feedback(ret: Return, when: datetime, *, resolved: bool) -> Return:
    return _next(ret, when, ret.status, feedback=Feedback(resolved=resolved, at=when))


def refund(
    ret: Return,
    *,
    issued_at: datetime,
    amount: int,
    automatic: bool = False,
    refund_id: str | None = None,
    status: RefundStatus = RefundStatus.ISSUED,
    version: int = 3,
    insured: int | None = None,
) -> Refund:
    """`insured`: the return postage the shipping insurer refunds with it (`insured_return_shipping`)."""
    money = Money(amount=amount, currency=ret.currency)
    zero = Money.zero(ret.currency)
    returnless = bool(ret.authorization and ret.authorization.returnless)
    return Refund(
        refund_id=refund_id or f"rf-{ret.return_id}",
        kind=RefundKind.RETURNLESS if returnless else RefundKind.RETURN,
        return_id=ret.return_id,
        order_id=ret.order_id,
        marketplace=ret.marketplace,
        currency=ret.currency,
        buyer=ret.buyer,
        seller=ret.seller,
        status=status,
        version=version,
        amount=money,
        breakdown=Breakdown(
            items=money,
            restocking_fee=zero,
            outbound_shipping=zero,
            return_shipping_concession=zero,
            other_concession=zero,
            total=money,
            insured_return_shipping=None if insured is None else Money(amount=insured, currency=ret.currency),
        ),
        automatic=automatic,
        actor=Actor(role="platform" if automatic else "seller", id=ret.seller.id),
        received_at=ret.received_at,
        # As services/refunds/refunding.py sets it: the return's deadline, or (nothing received, a
        # returnless refund) the refund's creation, a moment before it is paid.
        due_at=ret.refund_due_at if ret.received_at else issued_at - timedelta(seconds=1),
        issued_at=issued_at if status == RefundStatus.ISSUED else None,
        created_at=ret.received_at or issued_at - timedelta(seconds=1),
        updated_at=issued_at,
    )


RETURN_EVENTS = {
    ReturnStatus.REQUESTED: "return.created",
    ReturnStatus.AUTHORIZED: "return.authorized",
    ReturnStatus.REJECTED: "return.rejected",
    ReturnStatus.CLOSED: "return.closed",
    ReturnStatus.SHIPPED: "return.shipped",
    ReturnStatus.RECEIVED: "return.received",
    ReturnStatus.EXPIRED: "return.expired",
}


def return_event(ret: Return, event_type: str | None = None) -> CloudEvent:
    event_type = event_type or RETURN_EVENTS[ret.status]
    return new_event(
        event_type, service="returns", subject=ret.return_id, data=ret, sequence=ret.version, time=ret.updated_at
    )


def refund_event(refund_: Refund, event_type: str = "refund.issued") -> CloudEvent:
    subject = refund_.return_id if event_type == "return.refunded" else refund_.refund_id
    return new_event(
        event_type, service="refunds", subject=subject, data=refund_, sequence=refund_.version, time=refund_.updated_at
    )


def order_event(order_: Order) -> CloudEvent:
    return new_event(
        "order.delivered", service="orders", subject=order_.order_id, data=order_, sequence=0, time=order_.delivered_at
    )


def email(notification_id: str, when: datetime, *, status: str = "sent", attempts: int = 1) -> Notification:
    """The outcome of one email (a `notification.sent` or `notification.failed`'s data)."""
    return Notification(
        notification_id=notification_id,
        event_id=f"ev-{notification_id}",
        event_type="return.created",
        template="return_requested",
        recipient_role="seller",
        recipient_id="s",
        status=status,
        attempts=attempts,
        error=None if status == "sent" else "550 mailbox unavailable",
        at=when,
    )


def email_event(note: Notification) -> CloudEvent:
    return new_event(
        f"notification.{note.status}",
        service="notifications",
        subject=note.notification_id,
        data=note,
        sequence=note.attempts,
        time=note.at,
    )
