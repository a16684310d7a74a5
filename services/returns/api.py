"""HTTP surface of the returns service: orders read-model, seller policies, returns and their transitions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from services.returns import domain
from services.returns.commands import Lifecycle, Step
from services.returns.errors import OrderNotFound, rule_violation
from services.returns.policy import MarketplaceRules, SellerPolicy, check_policy, default_policy
from services.returns.schemas import (
    AuthorizeBody,
    CloseBody,
    FeedbackBody,
    ReceiveBody,
    RejectBody,
    ReturnFilter,
    ReturnRequest,
    ShipBody,
)
from services.returns.store import StoredPolicy
from shared.auth import CurrentPrincipal, Principal, require_roles
from shared.http import Forbidden, IfMatch, Unprocessable, parse_if_match
from shared.http.created import VERSIONED_RESPONSE, create_once
from shared.idempotency import Idempotent
from shared.models import Actor, Order, Return, ReturnStatus
from shared.moments import UtcMoment
from shared.openapi import ANSWERS_ANY_ID
from shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from shared.rules import RulesBroken

router = APIRouter(prefix="/v1")

# `responses=` of a route that answers a return with its ETag but takes no If-Match (those get it anyway).
ETAG_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"headers": {"ETag": {"schema": {"type": "string"}}}}}


# Dependencies are `async def`: FastAPI runs a plain `def` one in its thread pool, a thread hop
# per dependency per request for what is only an attribute read.
async def lifecycle_of(request: Request) -> Lifecycle:
    return request.app.state.lifecycle


Desk = Annotated[Lifecycle, Depends(lifecycle_of)]
OrderFeeder = Annotated[Principal, Depends(require_roles("service", "agent"))]
PolicyEditor = Annotated[Principal, Depends(require_roles("seller", "agent", "service"))]


# ---- orders read-model ----------------------------------------------------------------------


@router.put(
    "/orders/{order_id}",
    response_model=Order,
    tags=["orders"],
    summary="Store a delivered order's snapshot",
    responses={
        200: {"description": "The order was stored before: its snapshot is replaced."},
        201: {"description": "The order is stored for the first time.", "model": Order},
    },
)
async def put_order(order_id: str, order: Order, desk: Desk, principal: OrderFeeder, response: Response) -> Order:
    if order.order_id != order_id:
        raise Unprocessable(
            "The body's order_id differs from the path.",
            errors=[{"field": "order_id", "location": "body", "reason": "must equal the path's order id"}],
        )
    created = await desk.store.save_order(order, announce_at=desk.now())
    desk.on_commit(order.order_id, collection=desk.store.orders)
    response.status_code = 201 if created else 200
    return order


@router.get("/orders/{order_id}", response_model=Order, tags=["orders"])
async def get_order(order_id: str, desk: Desk, principal: CurrentPrincipal) -> Response:
    order = await desk.store.get_order(order_id)
    if order is None or not principal.may_access(buyer_id=order.buyer.id, seller_id=order.seller.id):
        raise OrderNotFound(f"No order {order_id}.")
    # Sent as stored, not validated again as the response model: an order of a marketplace no longer
    # served still reads (shared.models.STORED), where the model would refuse it as input.
    return Response(order.model_dump_json(), media_type="application/json")


# ---- seller return policy -------------------------------------------------------------------


class PolicyView(StoredPolicy):
    is_default: bool = False


MarketplaceQuery = Annotated[
    str | None,
    Query(description="The marketplace the policy applies in; absent: the deployment's default marketplace."),
]


def policy_rules(desk: Lifecycle, marketplace: str | None) -> tuple[str, MarketplaceRules]:
    """The marketplace a policy call names and its rules; one not served is a 422 on `marketplace`."""
    code = marketplace or desk.book.default_marketplace
    try:
        return code, desk.rules_for(code)
    except RulesBroken as exc:
        raise rule_violation(exc.problems) from None


@router.get(
    "/sellers/{seller_id}/return-policy",
    response_model=PolicyView,
    tags=["policies"],
    summary="The seller's policy in a marketplace, or that marketplace's default when they set none",
    openapi_extra=ANSWERS_ANY_ID,
)
async def get_return_policy(
    seller_id: str, desk: Desk, principal: CurrentPrincipal, marketplace: MarketplaceQuery = None
) -> PolicyView:
    code, rules = policy_rules(desk, marketplace)
    stored = await desk.store.get_policy(seller_id, code)
    if stored is not None:
        return PolicyView(**stored.model_dump())
    return PolicyView(**default_policy(rules).model_dump(), seller_id=seller_id, marketplace=code, is_default=True)


@router.put(
    "/sellers/{seller_id}/return-policy",
    response_model=PolicyView,
    tags=["policies"],
    summary="Set the seller's policy in a marketplace: more generous than its rules, never less",
)
async def put_return_policy(
    seller_id: str, policy: SellerPolicy, desk: Desk, principal: PolicyEditor, marketplace: MarketplaceQuery = None
) -> PolicyView:
    if principal.actor.role == "seller" and principal.actor.id != seller_id:
        raise Forbidden("A seller may only change their own return policy.")
    code, rules = policy_rules(desk, marketplace)
    problems = check_policy(policy, rules)
    if problems:
        raise rule_violation(problems)
    stored = await desk.store.put_policy(seller_id, code, policy, desk.now())
    return PolicyView(**stored.model_dump())


# ---- returns --------------------------------------------------------------------------------


@router.post(
    "/returns",
    status_code=201,
    response_model=Return,
    tags=["returns"],
    responses=VERSIONED_RESPONSE,
)
async def create_return(body: ReturnRequest, desk: Desk, idempotent: Idempotent) -> Response:
    reads = desk.read_order(body.order_id)  # while the Idempotency-Key is claimed (commands.OrderReads)
    try:
        return await create_once(
            idempotent,
            lambda: desk.open(body, idempotent.principal, idempotent.key, reads),
            lambda ret: f"/v1/returns/{ret.return_id}",
            answer_first=True,  # a re-run finds the return by its id, derived from the key
            etag=return_etag,
        )
    finally:
        reads.drop()


@router.get("/returns/{return_id}", response_model=Return, tags=["returns"], responses=ETAG_RESPONSE)
async def get_return(return_id: str, desk: Desk, principal: CurrentPrincipal, response: Response) -> Return:
    return etagged(await desk.visible_return(return_id, principal), response)


@router.get("/returns", response_model=Page[Return], tags=["returns"], summary="Returns, newest first")
async def list_returns(
    desk: Desk,
    principal: CurrentPrincipal,
    order_id: Annotated[str | None, Query(max_length=128)] = None,
    buyer_id: Annotated[str | None, Query(max_length=128)] = None,
    seller_id: Annotated[str | None, Query(max_length=128)] = None,
    status: ReturnStatus | None = None,
    created_from: UtcMoment | None = None,
    created_to: UtcMoment | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[Return]:
    actor = principal.actor
    # Buyers and sellers only ever see their own, whatever they ask for.
    if actor.role == "buyer":
        if buyer_id not in (None, actor.id):
            return Page[Return](items=[])
        buyer_id = actor.id
    elif actor.role == "seller":
        if seller_id not in (None, actor.id):
            return Page[Return](items=[])
        seller_id = actor.id
    wanted = ReturnFilter(
        order_id=order_id,
        buyer_id=buyer_id,
        seller_id=seller_id,
        status=status,
        created_from=created_from,
        created_to=created_to,
    )
    return await desk.store.list_returns(wanted, cursor, limit)


# ---- transitions ----------------------------------------------------------------------------


IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=64,
        description=(
            "The return's ETag (its version) this change is based on; a stale one answers 412 "
            "(compared strongly: weak tags never match)."
        ),
    ),
]


def expected_version(if_match: IfMatchHeader = None) -> IfMatch | None:
    """The versions (strong ETags) the change is based on; None when there is no condition."""
    return parse_if_match(if_match)


async def if_match_version(if_match: IfMatchHeader = None) -> IfMatch | None:
    """`expected_version` as a dependency (async: see `lifecycle_of`)."""
    return expected_version(if_match)


IfMatched = Annotated[IfMatch | None, Depends(if_match_version)]


def return_etag(ret: Return) -> str:
    """A return's strong ETag: its version."""
    return f'"{ret.version}"'


def etagged(ret: Return, response: Response) -> Return:
    response.headers["ETag"] = return_etag(ret)
    return ret


@dataclass(frozen=True)
class Transition:
    """A transition route's request: which return, who asks, and the version (If-Match) it is based on."""

    return_id: str
    desk: Lifecycle
    principal: Principal
    version: IfMatch | None
    response: Response

    @property
    def actor(self) -> Actor:
        return self.principal.actor

    async def __call__(self, action: str, step: Step) -> Return:
        """Apply `step` as `action` (Lifecycle.act) and answer the new version with its ETag."""
        return etagged(await self.desk.act(self.return_id, self.principal, action, self.version, step), self.response)


async def transition(
    return_id: str, desk: Desk, principal: CurrentPrincipal, version: IfMatched, response: Response
) -> Transition:
    return Transition(return_id, desk, principal, version, response)


Act = Annotated[Transition, Depends(transition)]


@router.post(
    "/returns/{return_id}/authorize",
    response_model=Return,
    tags=["transitions"],
    summary="Seller authorizes: a label, who pays return shipping, or a refund without return",
)
async def authorize_return(act: Act, body: AuthorizeBody | None = None) -> Return:
    chosen = body or AuthorizeBody()
    return await act(
        "authorize", lambda ret, now: domain.authorize(ret, chosen, act.actor, now, act.desk.rules_for(ret.marketplace))
    )


@router.post("/returns/{return_id}/reject", response_model=Return, tags=["transitions"])
async def reject_return(body: RejectBody, act: Act) -> Return:
    return await act("reject", lambda ret, now: domain.reject(ret, body, act.actor, now))


@router.post("/returns/{return_id}/close", response_model=Return, tags=["transitions"])
async def close_return(body: CloseBody, act: Act) -> Return:
    return await act("close", lambda ret, now: domain.close(ret, body, act.actor, now))


@router.post("/returns/{return_id}/ship", response_model=Return, tags=["transitions"])
async def ship_return(body: ShipBody, act: Act) -> Return:
    return await act("ship", lambda ret, now: domain.ship(ret, body, act.actor, now))


@router.post("/returns/{return_id}/receive", response_model=Return, tags=["transitions"])
async def receive_return(body: ReceiveBody, act: Act) -> Return:
    return await act(
        "receive", lambda ret, now: domain.receive(ret, body, act.actor, now, act.desk.rules_for(ret.marketplace))
    )


@router.post(
    "/returns/{return_id}/feedback",
    response_model=Return,
    tags=["transitions"],
    summary="Buyer answers: was your return resolved?",
)
async def record_return_feedback(body: FeedbackBody, act: Act) -> Return:
    return await act("feedback", lambda ret, now: domain.record_feedback(ret, body.resolved, act.actor, now, body.note))
