"""HTTP surface of A-to-z claims: file, read, list, and the seller's, buyer's and agent's transitions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from services.disputes import domain
from services.disputes.claims import ClaimDesk
from services.disputes.schemas import ClaimFilter, ClaimRequest, DecideBody, RespondBody, WithdrawBody
from shared.auth import CurrentPrincipal, Principal
from shared.dispute_models import Claim, ClaimStatus
from shared.http.created import LOCATION_RESPONSE, create_once
from shared.idempotency import Idempotent
from shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page

# A claim's transitions answer 409 when the claim's status does not allow them, or when another
# change got in first.
TRANSITION_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not allowed in the claim's current status (`status_now`), or changed concurrently."}
}

router = APIRouter(prefix="/v1")


# Dependencies are `async def`: FastAPI runs a plain `def` one in its thread pool.
async def desk_of(request: Request) -> ClaimDesk:
    return request.app.state.claims


Desk = Annotated[ClaimDesk, Depends(desk_of)]
IdQuery = Annotated[str | None, Query(max_length=128)]


def own_only(principal: Principal, buyer_id: str | None, seller_id: str | None) -> tuple[str | None, str | None] | None:
    """Buyers and sellers only ever see their own, whatever they ask for: the (buyer_id, seller_id)
    filter narrowed to the caller, or None when they asked for someone else's (an empty page)."""
    actor = principal.actor
    if actor.role == "buyer":
        return None if buyer_id not in (None, actor.id) else (actor.id, seller_id)
    if actor.role == "seller":
        return None if seller_id not in (None, actor.id) else (buyer_id, actor.id)
    return buyer_id, seller_id


@router.post(
    "/claims",
    status_code=201,
    response_model=Claim,
    tags=["claims"],
    summary="The buyer (or an agent) files an A-to-z guarantee claim on an order",
    responses=LOCATION_RESPONSE,
)
async def file_claim(body: ClaimRequest, desk: Desk, idempotent: Idempotent) -> Response:
    return await create_once(
        idempotent,
        lambda: desk.file(body, idempotent.principal, idempotent.key),
        lambda claim: f"/v1/claims/{claim.claim_id}",
    )


@router.get("/claims/{claim_id}", response_model=Claim, tags=["claims"])
async def get_claim(claim_id: str, desk: Desk, principal: CurrentPrincipal) -> Claim:
    return await desk.visible(claim_id, principal)


@router.get("/claims", response_model=Page[Claim], tags=["claims"], summary="Claims, newest first")
async def list_claims(
    desk: Desk,
    principal: CurrentPrincipal,
    order_id: IdQuery = None,
    buyer_id: IdQuery = None,
    seller_id: IdQuery = None,
    status: ClaimStatus | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[Claim]:
    parties = own_only(principal, buyer_id, seller_id)
    if parties is None:
        return Page[Claim](items=[])
    buyer_id, seller_id = parties
    wanted = ClaimFilter(order_id=order_id, buyer_id=buyer_id, seller_id=seller_id, status=status)
    return await desk.store.list_claims(wanted, cursor, limit)


@router.post(
    "/claims/{claim_id}/respond",
    response_model=Claim,
    tags=["claims"],
    summary="The seller refunds (full or partial) or contests with evidence, while the claim is open",
    responses=TRANSITION_CONFLICT,
)
async def respond_to_claim(claim_id: str, body: RespondBody, desk: Desk, principal: CurrentPrincipal) -> Claim:
    actor = principal.actor
    return await desk.act(
        claim_id, principal, "respond", "claim.seller_responded", lambda c, now: domain.respond(c, body, actor, now)
    )


@router.post(
    "/claims/{claim_id}/withdraw",
    response_model=Claim,
    tags=["claims"],
    summary="The buyer withdraws an open or contested claim",
    responses=TRANSITION_CONFLICT,
)
async def withdraw_claim(
    claim_id: str, desk: Desk, principal: CurrentPrincipal, body: WithdrawBody | None = None
) -> Claim:
    actor, note = principal.actor, body.note if body else None
    return await desk.act(
        claim_id, principal, "withdraw", "claim.withdrawn", lambda c, now: domain.withdraw(c, actor, now, note)
    )


@router.post(
    "/claims/{claim_id}/decide",
    response_model=Claim,
    tags=["claims"],
    summary="An agent grants (paid through refunds) or denies a contested claim",
    responses=TRANSITION_CONFLICT,
)
async def decide_claim(claim_id: str, body: DecideBody, desk: Desk, principal: CurrentPrincipal) -> Claim:
    return await desk.decide(claim_id, principal, body)
