"""HTTP surface of chargebacks: the Stripe webhook, the seller's evidence, listing and reading chargebacks."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel

from services.disputes.chargebacks import stripe_disputes
from services.disputes.chargebacks.desk import ChargebackDesk, ChargebackNotFound, SubmissionInFlight
from services.disputes.chargebacks.domain import IllegalTransition, UnreadableDispute
from services.disputes.chargebacks.store import ChargebackFilter
from services.disputes.chargebacks.stripe_disputes import BadDelivery, GatewayDeclined
from services.disputes.schemas import StrictEvidence
from shared.acting import check_role
from shared.auth import CurrentPrincipal, Principal, require_roles
from shared.dispute_models import Chargeback, ChargebackCategory, ChargebackStatus
from shared.http import BadRequest, Conflict, NotFound, Unprocessable
from shared.http.domain_errors import TransitionNotAllowed
from shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page

router = APIRouter(prefix="/v1")


class DeliveryRefused(BadRequest):
    title, slug = "Webhook delivery refused", "webhook-refused"


class ChargebackMissing(NotFound):
    title, slug = "Chargeback not found", "chargeback-not-found"


class NotSubmittable(TransitionNotAllowed):
    title = "Evidence not taken now"


class EvidenceRefused(Conflict):
    title, slug = "The gateway refused the evidence", "gateway-declined"


class WebhookAnswer(BaseModel):
    received: bool = True
    outcome: Literal["handled", "ignored", "duplicate"]


async def desk_of(request: Request) -> ChargebackDesk:
    return request.app.state.chargebacks


Desk = Annotated[ChargebackDesk, Depends(desk_of)]
EVIDENCE_ROLES = {"submit evidence for": frozenset({"seller", "agent"})}
EvidenceGiver = Annotated[Principal, Depends(require_roles("seller", "agent", "service"))]
SignatureHeader = Annotated[
    str | None, Header(alias="Stripe-Signature", max_length=2000, description="Stripe's signature of the body.")
]


def _refused(reason: str, detail: str) -> DeliveryRefused:
    return DeliveryRefused(
        detail, reason=reason, errors=[{"field": "Stripe-Signature", "location": "header", "reason": reason}]
    )


@router.post(
    "/webhooks/stripe",
    response_model=WebhookAnswer,
    tags=["chargebacks"],
    summary="Stripe dispute events (charge.dispute.created/updated/closed), signed with the endpoint's secret",
    responses={400: {"description": "Unsigned, badly signed, too old or replayed: nothing was changed."}},
)
async def receive_stripe_webhook(request: Request, desk: Desk, signature: SignatureHeader = None) -> WebhookAnswer:
    settings = request.app.state.settings
    payload = await request.body()
    try:
        delivery = stripe_disputes.verify(
            payload, signature, settings.stripe_webhook_secret, settings.stripe_webhook_tolerance_s
        )
    except BadDelivery as exc:
        raise _refused(exc.reason, str(exc)) from None
    try:
        outcome = await desk.receive(delivery)
    except UnreadableDispute as exc:
        raise DeliveryRefused(
            str(exc), reason="malformed", errors=[{"field": "data.object", "location": "body", "reason": str(exc)}]
        ) from None
    if outcome is None:
        raise _refused("replayed", "This delivery (event id and signature time) was received before.")
    return WebhookAnswer(outcome=outcome)


async def _visible(desk: ChargebackDesk, chargeback_id: str, principal: Principal) -> Chargeback:
    """The chargeback if the caller may see it (its seller, agents, services); else 404."""
    try:
        chargeback = await desk.get(chargeback_id)
    except ChargebackNotFound:
        chargeback = None
    seller_id = chargeback.seller.id if chargeback and chargeback.seller else None
    if chargeback is None or not principal.may_access(seller_id=seller_id):
        raise ChargebackMissing(f"No chargeback {chargeback_id}.")
    return chargeback


@router.get("/chargebacks/{chargeback_id}", response_model=Chargeback, tags=["chargebacks"])
async def get_chargeback(chargeback_id: str, desk: Desk, principal: CurrentPrincipal) -> Chargeback:
    return await _visible(desk, chargeback_id, principal)


@router.get("/chargebacks", response_model=Page[Chargeback], tags=["chargebacks"], summary="Chargebacks, newest first")
async def list_chargebacks(
    desk: Desk,
    principal: CurrentPrincipal,
    order_id: Annotated[str | None, Query(max_length=128)] = None,
    seller_id: Annotated[str | None, Query(max_length=128)] = None,
    status: ChargebackStatus | None = None,
    category: ChargebackCategory | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[Chargeback]:
    actor = principal.actor
    if actor.role == "buyer":  # a chargeback is between the bank, the seller and the marketplace
        return Page[Chargeback](items=[])
    if actor.role == "seller":  # sellers only ever see their own, whatever they ask for
        if seller_id not in (None, actor.id):
            return Page[Chargeback](items=[])
        seller_id = actor.id
    wanted = ChargebackFilter(order_id=order_id, seller_id=seller_id, status=status, category=category)
    return await desk.store.page(wanted, cursor, limit)


@router.post(
    "/chargebacks/{chargeback_id}/evidence",
    response_model=Chargeback,
    tags=["chargebacks"],
    summary="The seller's evidence, submitted to the gateway (while the chargeback needs a response)",
    responses={
        202: {"description": "Recorded; the gateway was away and it is submitted as soon as it answers."},
        409: {
            "description": "Not `needs_response`, past the deadline (the seller's `evidence_due_by`, or the "
            "gateway's `gateway_due_by` for everyone), evidence already on its way, or refused by the gateway."
        },
    },
)
async def submit_chargeback_evidence(
    chargeback_id: str, body: StrictEvidence, desk: Desk, principal: EvidenceGiver, response: Response
) -> Chargeback:
    if not any((body.carrier, body.tracking_number, body.refund_reference, body.text)):
        raise Unprocessable(
            "Evidence needs at least one of carrier, tracking_number, refund_reference, text.",
            errors=[{"field": "text", "location": "body", "reason": "no evidence given"}],
        )
    # A system gives evidence only for a named seller or agent (`X-Acting-For`), never as itself.
    check_role(principal, "submit evidence for", EVIDENCE_ROLES, "chargeback")
    chargeback = await _visible(desk, chargeback_id, principal)
    try:
        after, submitted = await desk.submit_evidence(chargeback, body, principal.actor)
    except IllegalTransition as exc:
        raise NotSubmittable(str(exc), status_now=exc.status.value) from None
    except SubmissionInFlight:
        raise NotSubmittable("Evidence for this chargeback is being submitted already.") from None
    except GatewayDeclined as exc:
        raise EvidenceRefused(f"The gateway refused the evidence ({exc}); nothing was kept.") from None
    if not submitted:
        response.status_code = 202
    return after
