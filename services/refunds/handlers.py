"""Events the refunds service consumes: event type -> one small idempotent function each.

Each handler gets the Refunds use cases, the envelope and the event's validated data
(shared.messaging). Each is idempotent on its own, under a redelivery and under two copies handled
at once, so the service keeps no inbox of handled event ids (app.py): a copy of `order.delivered`
finds its order and ledger there, one of `return.closed` raises a version to what it is already,
one of `return.received` (or a returnless `return.authorized`, or `return.replacement_unavailable`)
finds its refund by id (`Refunds.open_for_return`), and so does one of a claim being paid
(`claim_refunds.open_for_claim`: the id is the claim's `payment.refund_id`) or of an accepted offer
(`offer_refunds.open_for_offer`: "rf_" + the offer id).

A return being replaced (`Return.replacing()`) is never refunded here: its receipt and returnless
authorization open nothing, until `return.replacement_unavailable` says it falls back to a refund.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import model_validator

from services.refunds import claim_policy
from services.refunds.claim_refunds import open_for_claim
from services.refunds.offer_refunds import open_for_offer
from services.refunds.refunding import Refunds
from shared.dispute_models import Claim
from shared.events import CloudEvent
from shared.messaging import Subscription
from shared.models import Order, Receipt, Return, ReturnStatus


class ReceivedReturn(Return):
    """`return.received` data as refunds relies on it: the receipt, and the refund deadline the
    returns service set (the one truth; refunds never computes its own). Without them the event
    is invalid and parked; a return being replaced has no deadline (nothing to refund)."""

    received_at: datetime
    receipt: Receipt

    @model_validator(mode="after")
    def _refund_deadline(self) -> ReceivedReturn:
        if self.refund_due_at is None and not self.replacing():
            raise ValueError("refund_due_at: a received return to refund has its refund deadline")
        return self


async def order_delivered(refunds: Refunds, event: CloudEvent, order: Order) -> None:
    await refunds.store.save_order(order)


async def return_received(refunds: Refunds, event: CloudEvent, ret: ReceivedReturn) -> None:
    await refunds.open_for_return(ret)


async def return_authorized(refunds: Refunds, event: CloudEvent, ret: Return) -> None:
    # Only a returnless authorization concerns refunds: it is refunded at once. Any other is not
    # remembered, since only a closed return changes what a later event does (`return_closed`).
    if ret.authorization is not None and ret.authorization.returnless:
        await refunds.open_for_return(ret)


async def return_replacement_unavailable(refunds: Refunds, event: CloudEvent, ret: Return) -> None:
    # The seller cannot replace: the return falls back to a refund, now if it can be refunded now
    # (received, or authorized returnless), else when its receipt comes (`return.received`).
    if ret.status == ReturnStatus.RECEIVED:
        await refunds.open_for_return(ReceivedReturn.model_validate(ret.model_dump()))
    elif ret.status == ReturnStatus.AUTHORIZED and ret.authorization is not None and ret.authorization.returnless:
        await refunds.open_for_return(ret)


async def return_offer_accepted(refunds: Refunds, event: CloudEvent, ret: Return) -> None:
    await open_for_offer(refunds, ret)


async def return_closed(refunds: Refunds, event: CloudEvent, ret: Return) -> None:
    # Remembered so that a returnless authorization arriving late is not refunded.
    await refunds.store.note_closed(ret)


async def claim_paying(refunds: Refunds, event: CloudEvent, claim: Claim) -> None:
    # `claim.granted`, or `claim.seller_responded` with a refund (not a contest): pay the claim.
    if claim_policy.wants_paying(claim):
        await open_for_claim(refunds, claim)


SUBSCRIPTIONS: list[Subscription[Refunds, Any]] = [
    Subscription("order.delivered", order_delivered),  # on the upstream orders exchange
    Subscription("return.received", return_received, model=ReceivedReturn),
    Subscription("return.authorized", return_authorized),
    Subscription("return.closed", return_closed),
    Subscription("return.replacement_unavailable", return_replacement_unavailable),
    Subscription("return.offer_accepted", return_offer_accepted),
    Subscription("claim.granted", claim_paying),
    Subscription("claim.seller_responded", claim_paying),
]
