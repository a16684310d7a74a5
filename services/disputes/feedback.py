"""Seller feedback: a buyer's 1-5 stars on an order's seller (one per order), removed by an agent.

`leave` and `remove` are pure; FeedbackDesk loads, writes once and wakes the relay.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from services.disputes.errors import (
    ConcurrentChange,
    FeedbackExists,
    FeedbackNotFound,
    NotYourAction,
    TransitionNotAllowed,
    rule_violation,
)
from services.disputes.orders import OrderBook
from services.disputes.schemas import FeedbackRequest
from services.disputes.store import ClaimsStore, DuplicateKeyError
from shared.auth import Principal
from shared.clock import Clock
from shared.dispute_models import NEGATIVE_RATING, SellerFeedback
from shared.models import Order
from shared.mongo import as_stored
from shared.rules import FieldProblem

log = logging.getLogger(__name__)


class AlreadyRemoved(Exception):
    pass


def leave(order: Order, request: FeedbackRequest, feedback_id: str, now: datetime) -> SellerFeedback:
    return SellerFeedback(
        feedback_id=feedback_id,
        order_id=order.order_id,
        marketplace=order.marketplace,
        buyer_id=order.buyer.id,
        seller_id=order.seller.id,
        rating=request.rating,
        negative=request.rating <= NEGATIVE_RATING,
        comment=request.comment,
        version=1,
        left_at=now,
    )


def remove(feedback: SellerFeedback, note: str, now: datetime) -> SellerFeedback:
    if feedback.removed:
        raise AlreadyRemoved(feedback.feedback_id)
    changes = {"removed": True, "removal_note": note, "removed_at": now, "version": feedback.version + 1}
    return feedback.model_copy(update=changes)


def request_ref(principal: Principal, idempotency_key: str | None) -> str | None:
    """Names the request that left feedback (caller and key), so a retry after a crash finds it."""
    if idempotency_key is None:
        return None
    return hashlib.sha256(f"{principal.ref}|{idempotency_key}".encode()).hexdigest()


class FeedbackDesk:
    def __init__(
        self,
        store: ClaimsStore,
        orders: OrderBook,
        clock: Clock,
        on_commit: Callable[..., None] = lambda *_, **__: None,
    ) -> None:
        self.store, self.orders, self.clock, self.on_commit = store, orders, clock, on_commit

    def now(self) -> datetime:
        return as_stored(self.clock.now())

    async def leave(
        self, request: FeedbackRequest, principal: Principal, idempotency_key: str | None
    ) -> SellerFeedback:
        if principal.actor.role != "buyer":
            raise NotYourAction("Only the order's buyer leaves feedback on its seller.")
        facts = await self.orders.get(request.order_id)
        if facts is None or not principal.may_access(buyer_id=facts.order.buyer.id):
            raise rule_violation([FieldProblem("order_id", "no delivered order with this id")])
        ref = request_ref(principal, idempotency_key)
        feedback = leave(facts.order, request, f"fbk_{uuid.uuid4().hex}", self.now())
        try:
            outbox = await self.store.insert_feedback(feedback, ref)
        except DuplicateKeyError:
            found = await self.store.feedback_of_order(request.order_id)
            if found is not None and ref is not None and found[1] == ref:
                return found[0]  # this very request left it before its response was stored
            raise FeedbackExists("The order has feedback already; there is one per order.") from None
        self.on_commit(feedback.feedback_id, collection=self.store.feedback, entries=outbox)
        log.info("feedback left", extra={"feedback_id": feedback.feedback_id, "order_id": feedback.order_id})
        return feedback

    async def visible(self, feedback_id: str, principal: Principal) -> SellerFeedback:
        feedback = await self.store.get_feedback(feedback_id)
        if feedback is None or not principal.may_access(buyer_id=feedback.buyer_id, seller_id=feedback.seller_id):
            raise FeedbackNotFound(f"No feedback {feedback_id}.")
        return feedback

    async def remove(self, feedback_id: str, principal: Principal, note: str) -> SellerFeedback:
        if principal.actor.role != "agent":
            raise NotYourAction("Only agents remove feedback.")
        feedback = await self.visible(feedback_id, principal)
        now = self.now()
        try:
            after = remove(feedback, note, now)
        except AlreadyRemoved:
            raise TransitionNotAllowed("The feedback was removed already.") from None
        handover = await self.store.commit_feedback(feedback, after, ["feedback.removed"], now)
        if handover is None:
            raise ConcurrentChange("The feedback changed while this request was processed; reload it and retry.")
        self.on_commit(feedback_id, collection=self.store.feedback, **handover)
        log.info("feedback removed", extra={"feedback_id": feedback_id, "actor": principal.ref})
        return after
