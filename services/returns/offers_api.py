"""HTTP surface of keep-it offers: the seller (or an agent) offers, the buyer (or an agent) accepts or declines.

Each route is one transition through `Lifecycle.act` (api.Act): same roles, problem+json, If-Match
and visibility (someone else's return is a 404) as the other transitions.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response

from services.returns import offers
from services.returns.api import Act, Transition, return_etag
from services.returns.commands import check_role
from services.returns.schemas import Body, Note
from shared import acting
from shared.http import Conflict, NotFound, PreconditionFailed
from shared.http.created import VERSIONED_RESPONSE, create_once
from shared.idempotency import Idempotent
from shared.models import Return
from shared.money import Money
from shared.resolution_models import OfferStatus

router = APIRouter(prefix="/v1")
OFFER_NAMESPACE = uuid.UUID("0b7e4f5a-93c2-4d61-8f0e-5a2c9d1e7b34")
OfferId = Annotated[str, Path(min_length=1, max_length=128)]


class OfferBody(Body):
    amount: Money
    note: Note | None = None


class OfferAnswerBody(Body):
    note: Note | None = None


class OfferNotFound(NotFound):
    title, slug = "Offer not found", "offer-not-found"


def offer_id_for(act: Transition, idempotency_key: str | None) -> str:
    """Derived from (caller, return, key) when there is a key: a retry after a crash makes no second offer."""
    keyed = None if idempotency_key is None else f"{act.return_id}|{idempotency_key}"
    return acting.keyed_id("ofr", OFFER_NAMESPACE, act.principal, keyed)


async def _make(act: Transition, body: OfferBody, idempotency_key: str | None) -> Return:
    offer_id = offer_id_for(act, idempotency_key)

    async def made_already() -> Return | None:
        ret = await act.desk.visible_return(act.return_id, act.principal)
        return ret if any(offer.offer_id == offer_id for offer in ret.offers) else None

    if idempotency_key is not None:
        # A retry whose first answer was not recorded (a crash after the write): the same offer,
        # whatever version the return is at now (so before If-Match is compared).
        check_role(act.principal, offers.MAKE)
        if earlier := await made_already():
            return earlier

    def make(ret: Return, now: datetime) -> Return:
        validity = act.desk.rules_for(ret.marketplace).offer_validity  # the return's marketplace's
        return offers.make_offer(ret, offer_id, body.amount, act.actor, now, validity, body.note)

    try:
        return await act(offers.MAKE, make)
    except (Conflict, PreconditionFailed):
        # A concurrent copy of this request got in first: it made the offer this key names.
        if idempotency_key is not None and (earlier := await made_already()):
            return earlier
        raise


# The buyer's two answers: the transition's name and its pure step (same signature).
ANSWERS = {
    OfferStatus.ACCEPTED: (offers.ACCEPT, offers.accept_offer),
    OfferStatus.DECLINED: (offers.DECLINE, offers.decline_offer),
}


async def _answer(act: Transition, offer_id: str, answered: OfferStatus, body: OfferAnswerBody | None) -> Return:
    """Accept or decline; the same answer repeated (a retry) answers the return as it is."""
    action, decide = ANSWERS[answered]
    note = body.note if body else None
    try:
        return await act(action, lambda ret, now: decide(ret, offer_id, act.actor, now, note))
    except offers.UnknownOffer:
        raise OfferNotFound(f"No offer {offer_id} on return {act.return_id}.") from None
    except Conflict:
        ret = await act.desk.visible_return(act.return_id, act.principal)
        if any(offer.offer_id == offer_id and offer.status == answered for offer in ret.offers):
            act.response.headers["ETag"] = f'"{ret.version}"'
            return ret
        raise


@router.post(
    "/returns/{return_id}/offers",
    status_code=201,
    response_model=Return,
    tags=["offers"],
    responses=VERSIONED_RESPONSE,
    summary="Seller offers part of the money back for the buyer to keep the item",
)
async def make_offer(body: OfferBody, act: Act, idempotent: Idempotent) -> Response:
    return await create_once(
        idempotent,
        lambda: _make(act, body, idempotent.key),
        lambda ret: f"/v1/returns/{ret.return_id}",
        etag=return_etag,
    )


@router.post(
    "/returns/{return_id}/offers/{offer_id}/accept",
    response_model=Return,
    tags=["offers"],
    summary="Buyer accepts the offer: keeps the item and is refunded the offered amount",
)
async def accept_offer(offer_id: OfferId, act: Act, body: OfferAnswerBody | None = None) -> Return:
    return await _answer(act, offer_id, OfferStatus.ACCEPTED, body)


@router.post(
    "/returns/{return_id}/offers/{offer_id}/decline",
    response_model=Return,
    tags=["offers"],
    summary="Buyer declines the offer: the return goes on",
)
async def decline_offer(offer_id: OfferId, act: Act, body: OfferAnswerBody | None = None) -> Return:
    return await _answer(act, offer_id, OfferStatus.DECLINED, body)
