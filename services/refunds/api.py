"""HTTP surface of the refunds service: create or pay refunds, retry failed ones, read them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from services.refunds.errors import RefundNotFound
from services.refunds.refunding import Refunds
from services.refunds.schemas import RefundFilter, RefundRequest
from services.refunds.store import RefundStore
from shared.auth import CurrentPrincipal, Principal, Role, require_roles
from shared.http import Unprocessable
from shared.http.created import LOCATION_RESPONSE, create_once
from shared.idempotency import HEADER, Idempotent
from shared.models import Id, Refund, RefundStatus
from shared.openapi import IDEMPOTENCY_KEY_REQUIRED
from shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page

router = APIRouter(prefix="/v1/refunds", tags=["refunds"])
SellerOrAgent = Annotated[Principal, Depends(require_roles("seller", "agent"))]
Agent = Annotated[Principal, Depends(require_roles("agent"))]
RefundId = Annotated[str, Path(min_length=1, max_length=128)]


async def _refunds(request: Request) -> Refunds:
    return request.app.state.refunds


async def _store(request: Request) -> RefundStore:
    return request.app.state.store


RefundsDep = Annotated[Refunds, Depends(_refunds)]
StoreDep = Annotated[RefundStore, Depends(_store)]


@router.post(
    "",
    status_code=201,
    response_model=Refund,
    summary="Refund a received return, or an order directly",
    openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    responses={
        201: {**LOCATION_RESPONSE[201], "description": "The refund, issued (or failed: see `failure_reason`)."},
        404: {"description": "No such received return or order (or not the caller's)."},
        409: {"description": "The return is already refunded or being refunded."},
        422: {"description": "Invalid lines or concessions, or more than the buyer paid."},
    },
)
async def create_refund(
    body: RefundRequest, principal: SellerOrAgent, refunds: RefundsDep, idempotent: Idempotent
) -> Response:
    if idempotent.key is None:
        raise Unprocessable(
            f"{HEADER} is required: a refund pays money and must be safe to retry.",
            errors=[{"field": HEADER, "location": "header", "reason": "required"}],
        )
    key = idempotent.key
    return await create_once(idempotent, lambda: refunds.request(principal, key, body), _location)


def _location(refund: Refund) -> str:
    return f"/v1/refunds/{refund.refund_id}"


@router.post(
    "/{refund_id}/retry",
    response_model=Refund,
    summary="Pay a failed refund again (agents)",
    responses={409: {"description": "The refund is not failed."}},
)
async def retry_refund(refund_id: RefundId, principal: Agent, refunds: RefundsDep, idempotent: Idempotent) -> Response:
    return await idempotent.run(lambda: refunds.retry(principal, refund_id))


@router.get("/{refund_id}", response_model=Refund, summary="One refund")
async def get_refund(refund_id: RefundId, principal: CurrentPrincipal, store: StoreDep) -> Refund:
    record = await store.get(refund_id)
    if record is None or not principal.may_access(buyer_id=record.refund.buyer.id, seller_id=record.refund.seller.id):
        raise RefundNotFound(f"Refund {refund_id} does not exist.")
    return record.refund


@router.get("", response_model=Page[Refund], summary="Refunds by return, order, seller and status")
async def list_refunds(
    principal: CurrentPrincipal,
    store: StoreDep,
    return_id: Annotated[Id | None, Query()] = None,
    order_id: Annotated[Id | None, Query()] = None,
    seller_id: Annotated[Id | None, Query()] = None,
    status: Annotated[RefundStatus | None, Query()] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[Refund]:
    actor = principal.actor
    buyer_id: str | None = None
    # Buyers and sellers list only their own; asking for someone else's finds nothing.
    if principal.acts_as(Role.SELLER):
        if seller_id not in (None, actor.id):
            return Page[Refund](items=[])
        seller_id = actor.id
    elif principal.acts_as(Role.BUYER):
        buyer_id = actor.id
    wanted = RefundFilter(return_id=return_id, order_id=order_id, buyer_id=buyer_id, seller_id=seller_id, status=status)
    return await store.page(wanted, cursor, limit)
