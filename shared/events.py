"""The CloudEvents 1.0 envelope and the registry of every event type: the one contract."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared import tracing
from shared.dispute_models import Chargeback, Claim, ExpiredOrder, SellerFeedback
from shared.models import BuyerFlag, Notification, Order, Refund, Return
from shared.moments import utc_moment
from shared.resolution_models import StoreCreditEntry

EXCHANGE = "returns.events"
ORDERS_EXCHANGE = "orders.events"
SCHEMA_VERSION = 1

# The application outside the platform that publishes `order.delivered`.
ORDER_SYSTEM = "orders"


@dataclass(frozen=True)
class EventType:
    """One event type of the contract. Routing key = `name`; the body's `data` is a `data` model."""

    name: str
    data: type[BaseModel]
    publisher: str  # the one platform service that emits it, or ORDER_SYSTEM
    title: str
    summary: str  # what happened; `subject` is the return id unless said otherwise
    exchange: str = EXCHANGE


# Every event type there is: AsyncAPI (tools/contracts.py), subscriptions (shared.messaging) and
# the contract tests derive from this table. Adding a type: docs/architecture.md says what else.
EVENT_TYPES: Mapping[str, EventType] = MappingProxyType(
    {
        t.name: t
        for t in (
            EventType(
                "order.delivered",
                Order,
                ORDER_SYSTEM,
                "Order delivered",
                "The upstream order system delivered an order: the snapshot returns are validated against. "
                "Subject: the order id.",
                exchange=ORDERS_EXCHANGE,
            ),
            EventType(
                "return.created",
                Return,
                "returns",
                "Return requested",
                "A buyer (or an agent for them) requested a return.",
            ),
            EventType(
                "return.authorized",
                Return,
                "returns",
                "Return authorized",
                "The seller, the seller's policy (`authorization.automatic`) or the platform at the response "
                "deadline (`automatic` and `late`) authorized the return; `authorization.returnless` means the "
                "buyer keeps the item and is refunded at once.",
            ),
            EventType(
                "return.rejected",
                Return,
                "returns",
                "Return rejected",
                "The seller rejected the request; `rejection.invalid` marks an in-policy, seller-fault request "
                "rejected anyway.",
            ),
            EventType(
                "return.closed",
                Return,
                "returns",
                "Return closed",
                "The buyer withdrew or the matter was settled without a return (`closure.code`).",
            ),
            EventType(
                "return.shipped", Return, "returns", "Return shipped", "The buyer shipped the item back (`shipment`)."
            ),
            EventType(
                "return.received",
                Return,
                "returns",
                "Return received",
                "The seller received the item; `receipt` has the quantity and condition per line and "
                "`refund_due_at` the refund deadline.",
            ),
            EventType(
                "return.expired",
                Return,
                "returns",
                "Return expired",
                "Nothing was shipped within the authorization's validity.",
            ),
            EventType(
                "return.feedback_received",
                Return,
                "returns",
                "Return feedback received",
                'The buyer answered "was your return resolved?" (`feedback.resolved`).',
            ),
            EventType(
                "return.offer_made",
                Return,
                "returns",
                "Keep-it offer made",
                "The seller (or an agent) offered a partial refund for the buyer to keep the item: the open offer "
                "is the one of `offers` with status `open` (amount, `expires_at`).",
            ),
            EventType(
                "return.offer_accepted",
                Return,
                "returns",
                "Keep-it offer accepted",
                "The buyer accepted the offer and keeps the item (`settlement.kept_item`); the refunds service "
                "pays the offer's amount once (refund kind `offer`), then `return.refunded` ends the return.",
            ),
            EventType(
                "return.offer_declined",
                Return,
                "returns",
                "Keep-it offer declined",
                "The buyer declined the offer; the return goes on as before.",
            ),
            EventType(
                "return.offer_expired",
                Return,
                "returns",
                "Keep-it offer expired",
                "The buyer did not answer the offer by its `expires_at`; the return goes on as before.",
            ),
            EventType(
                "return.replacement_ordered",
                Return,
                "returns",
                "Replacement ordered",
                "The order system is to ship `replacement.lines` to the buyer (at authorization for seller-fault "
                "reasons when the seller's policy says so, else once the item is received), then confirm with "
                "`PUT /v1/returns/{id}/replacement`.",
            ),
            EventType(
                "return.replacement_shipped",
                Return,
                "returns",
                "Replacement shipped",
                "The order system confirmed the replacement's shipment (`replacement.carrier`, `tracking_number`).",
            ),
            EventType(
                "return.replacement_unavailable",
                Return,
                "returns",
                "Replacement unavailable",
                "The seller cannot replace: the return falls back to a refund of its lines (refunded at once when "
                "the item was already received, else on receipt).",
            ),
            EventType(
                "return.replaced",
                Return,
                "returns",
                "Return settled by a replacement",
                "The item is back and its replacement shipped: the return ends `replaced` with nothing refunded.",
            ),
            EventType(
                "store_credit.granted",
                StoreCreditEntry,
                "refunds",
                "Store credit granted",
                "A refund was paid as store credit (`amount`, bonus included; `balance` after it). Subject: the "
                "buyer id.",
            ),
            EventType(
                "store_credit.debited",
                StoreCreditEntry,
                "refunds",
                "Store credit debited",
                "A checkout spent some of a buyer's store credit (`reference`; `balance` after it). Subject: the "
                "buyer id.",
            ),
            EventType(
                "return.refunded",
                Refund,
                "refunds",
                "Return refunded",
                "The buyer was refunded for a return; data is the refund. Subject: the return id. "
                "Published once per return.",
            ),
            EventType(
                "seller.response_due_soon",
                Return,
                "returns",
                "Seller response due soon",
                "Reminder: the seller has not answered and `response_due_at` is near.",
            ),
            EventType(
                "refund.issued",
                Refund,
                "refunds",
                "Refund issued",
                "A refund (of a return, returnless, or a direct order refund) was paid. Subject: the refund id.",
            ),
            EventType(
                "refund.failed",
                Refund,
                "refunds",
                "Refund failed",
                "The payment gateway refused the refund or kept failing. Subject: the refund id.",
            ),
            EventType(
                "buyer.flagged",
                BuyerFlag,
                "metrics",
                "Buyer flagged",
                "A buyer crossed the abuse thresholds: auto-authorization and returnless refunds are off for "
                "them. Subject: the buyer id.",
            ),
            EventType(
                "buyer.unflagged",
                BuyerFlag,
                "metrics",
                "Buyer unflagged",
                "A flagged buyer is back under the thresholds. Subject: the buyer id.",
            ),
            EventType(
                "notification.sent",
                Notification,
                "notifications",
                "Notification sent",
                "An email was accepted by the SMTP server. Ids only, no address. Subject: the notification id.",
            ),
            EventType(
                "notification.failed",
                Notification,
                "notifications",
                "Notification failed",
                "An email could not be delivered after every retry. Subject: the notification id.",
            ),
            EventType(
                "order.expired",
                ExpiredOrder,
                ORDER_SYSTEM,
                "Order expired unshipped",
                "The upstream order system cancelled an order its seller never shipped (it counts against the "
                "seller's rating). Subject: the order id.",
                exchange=ORDERS_EXCHANGE,
            ),
            EventType(
                "claim.filed",
                Claim,
                "disputes",
                "A-to-z claim filed",
                "A buyer asked the marketplace to step in on an order (`reason`, `amount`); the seller must answer "
                "by `respond_by`. Subject: the claim id.",
            ),
            EventType(
                "claim.response_due_soon",
                Claim,
                "disputes",
                "Claim response due soon",
                "Reminder: the seller has not answered the claim and `respond_by` is near. Subject: the claim id.",
            ),
            EventType(
                "claim.seller_responded",
                Claim,
                "disputes",
                "Claim answered by the seller",
                "The seller refunded (`seller_response.kind` `refund`: status `paying`) or contested with evidence "
                "(`contest`: status `contested`, for an agent to decide). Subject: the claim id.",
            ),
            EventType(
                "claim.granted",
                Claim,
                "disputes",
                "Claim granted",
                "Decided for the buyer: by an agent, or by the platform when the seller did not answer in time "
                "(`decision.automatic`). The refunds service pays `payment.amount` (refund kind `claim`). Subject: "
                "the claim id.",
            ),
            EventType(
                "claim.denied",
                Claim,
                "disputes",
                "Claim denied",
                "An agent decided a contested claim for the seller. Subject: the claim id.",
            ),
            EventType(
                "claim.withdrawn",
                Claim,
                "disputes",
                "Claim withdrawn",
                "The buyer withdrew an open claim. Subject: the claim id.",
            ),
            EventType(
                "claim.closed",
                Claim,
                "disputes",
                "Claim closed",
                "The claim's refund was paid (`closure.code` `paid`, `payment.paid`) or the order had nothing left "
                "to refund (`already_refunded`). Subject: the claim id.",
            ),
            EventType(
                "chargeback.opened",
                Chargeback,
                "disputes",
                "Chargeback opened",
                "The payment gateway reported a card dispute on an order's payment; the seller's evidence is due by "
                "`evidence_due_by`. `category` `fraud` or `service`. Subject: the chargeback id.",
            ),
            EventType(
                "chargeback.evidence_submitted",
                Chargeback,
                "disputes",
                "Chargeback evidence submitted",
                "Evidence went to the gateway: the seller's, or the platform's own (`automatic`: the order was "
                "refunded in full). Subject: the chargeback id.",
            ),
            EventType(
                "chargeback.won",
                Chargeback,
                "disputes",
                "Chargeback won",
                "The gateway closed the dispute for the seller. Subject: the chargeback id.",
            ),
            EventType(
                "chargeback.lost",
                Chargeback,
                "disputes",
                "Chargeback lost",
                "The gateway closed the dispute for the buyer. Subject: the chargeback id.",
            ),
            EventType(
                "feedback.left",
                SellerFeedback,
                "disputes",
                "Seller feedback left",
                "A buyer rated the seller of an order, 1-5 stars (`negative`: 1 or 2). Subject: the feedback id.",
            ),
            EventType(
                "feedback.removed",
                SellerFeedback,
                "disputes",
                "Seller feedback removed",
                "An agent removed feedback (`removal_note`); removed feedback never counts. Subject: the feedback id.",
            ),
        )
    }
)


class UnknownEventType(ValueError):
    pass


def registered(name: str) -> EventType:
    """The registered event type called `name`; UnknownEventType if there is none."""
    found = EVENT_TYPES.get(name)
    if found is None:
        raise UnknownEventType(name)
    return found


def dataschema(event_type: str) -> str:
    return f"urn:returns-platform:events:{event_type}:v{SCHEMA_VERSION}"


class CloudEvent(BaseModel):
    """CloudEvents 1.0 structured JSON; `id` is also the AMQP message_id."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    time: datetime
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = None
    sequence: int = Field(default=0, ge=0, description="The aggregate's version, for ordering.")
    # CloudEvents distributed-tracing extension, and the request that caused the event: absent when
    # unknown (events of old producers, of jobs no request started). See shared.tracing.
    traceparent: str | None = Field(default=None, description="W3C trace context of the work that caused the event.")
    tracestate: str | None = Field(default=None, description="W3C vendor trace state, with `traceparent`.")
    requestid: str | None = Field(default=None, description="X-Request-ID of the HTTP call that caused the event.")
    data: dict[str, Any]

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time must carry a UTC offset")
        return utc_moment(value)

    def typed(self) -> BaseModel:
        """The `data` parsed as this event type's model."""
        return registered(self.type).data.model_validate(self.data)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, body: bytes | str) -> CloudEvent:
        return cls.model_validate_json(body)


def new_event(
    event_type: str,
    *,
    service: str,
    subject: str,
    data: BaseModel,
    sequence: int,
    time: datetime,
    event_id: str | None = None,
) -> CloudEvent:
    """Build the envelope for `data` (the aggregate's full current state), in the current trace
    context and with the current request id (shared.tracing)."""
    registered(event_type)
    return CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source=f"/services/{service}",
        type=event_type,
        time=time,
        subject=subject,
        dataschema=dataschema(event_type),
        sequence=sequence,
        data=data.model_dump(mode="json"),
        **tracing.current_fields(),
    )
