"""`PUT /v1/returns/{id}/replacement`: the order system says the replacement shipped, or cannot be sent."""

from __future__ import annotations

from fastapi import APIRouter

from services.returns import replacements
from services.returns.api import Act
from services.returns.errors import ConcurrentChange
from services.returns.schemas import ReplacementBody
from shared.models import Return

router = APIRouter(prefix="/v1")


@router.put(
    "/returns/{return_id}/replacement",
    response_model=Return,
    tags=["transitions"],
    summary="The order system (or the seller, an agent) confirms the replacement shipped, or that it cannot be sent",
    description=(
        "`shipped` (carrier, tracking number) from `ordered`; the return ends `replaced` at once when its item is "
        "back or was not asked back. `unavailable` from `requested` or `ordered`: the lines are refunded instead. "
        "The same answer again changes nothing (200); a different one is 409."
    ),
)
async def answer_replacement(body: ReplacementBody, act: Act) -> Return:
    if body.status == "shipped":
        action, step = "ship_replacement", lambda ret, now: replacements.ship(ret, body, act.actor, now)
    else:
        action, step = (
            "replacement_unavailable",
            lambda ret, now: replacements.give_up(ret, body, act.actor, now, act.desk.rules_for(ret.marketplace)),
        )
    try:
        return await act(action, step)
    except ConcurrentChange:
        # Order systems send the same confirmation twice at once: the copy that lost the write
        # reads the winner's and answers 200 like any repeat (or 409 if it differs).
        if act.version is not None:
            raise
        return await act(action, step)
