"""HTTP surface of seller feedback: the buyer leaves it, an agent removes it, lists and reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from services.disputes.api import own_only
from services.disputes.feedback import FeedbackDesk
from services.disputes.schemas import FeedbackFilter, FeedbackRequest, RemoveFeedbackBody
from shared.auth import CurrentPrincipal
from shared.dispute_models import SellerFeedback
from shared.http.created import LOCATION_RESPONSE, create_once
from shared.idempotency import Idempotent
from shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page

router = APIRouter(prefix="/v1")


async def desk_of(request: Request) -> FeedbackDesk:
    return request.app.state.feedback


Desk = Annotated[FeedbackDesk, Depends(desk_of)]
IdQuery = Annotated[str | None, Query(max_length=128)]


@router.post(
    "/feedback",
    status_code=201,
    response_model=SellerFeedback,
    tags=["feedback"],
    summary="The order's buyer rates its seller, 1-5 stars (one feedback per order)",
    responses=LOCATION_RESPONSE,
)
async def leave_feedback(body: FeedbackRequest, desk: Desk, idempotent: Idempotent) -> Response:
    return await create_once(
        idempotent,
        lambda: desk.leave(body, idempotent.principal, idempotent.key),
        lambda feedback: f"/v1/feedback/{feedback.feedback_id}",
    )


@router.post(
    "/feedback/{feedback_id}/remove",
    response_model=SellerFeedback,
    tags=["feedback"],
    summary="An agent removes feedback (it no longer counts)",
    responses={409: {"description": "Removed already, or changed concurrently."}},
)
async def remove_feedback(
    feedback_id: str, body: RemoveFeedbackBody, desk: Desk, principal: CurrentPrincipal
) -> SellerFeedback:
    return await desk.remove(feedback_id, principal, body.note)


@router.get("/feedback/{feedback_id}", response_model=SellerFeedback, tags=["feedback"])
async def get_feedback(feedback_id: str, desk: Desk, principal: CurrentPrincipal) -> SellerFeedback:
    return await desk.visible(feedback_id, principal)


@router.get("/feedback", response_model=Page[SellerFeedback], tags=["feedback"], summary="Feedback, newest first")
async def list_feedback(
    desk: Desk,
    principal: CurrentPrincipal,
    order_id: IdQuery = None,
    buyer_id: IdQuery = None,
    seller_id: IdQuery = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[SellerFeedback]:
    parties = own_only(principal, buyer_id, seller_id)
    if parties is None:
        return Page[SellerFeedback](items=[])
    buyer_id, seller_id = parties
    wanted = FeedbackFilter(order_id=order_id, buyer_id=buyer_id, seller_id=seller_id)
    return await desk.store.list_feedback(wanted, cursor, limit)
