"""Replacements (docs/product.md §12): what a request for one must be, and how it is ordered,
shipped, given up or settles the return. Pure functions of data, like services/returns/domain.py.

A replacement moves requested -> ordered -> shipped, or to unavailable from requested or ordered
(the lines are then refunded like any return's). Ordering and the return's end (`replaced`) are
not asked for by anyone: they follow from another transition (`follow_ups`) and are written with
it, in the same store write, each as one more version with its own event.
"""

from __future__ import annotations

from datetime import datetime

from services.returns.domain import ALLOWED, KEPT_ITEM, PLATFORM, IllegalTransition, advance, lapsed_offer
from services.returns.policy import MarketplaceRules, PolicyViolation
from services.returns.schemas import ReplacementBody, ReturnRequest
from shared.models import (
    Actor,
    Fault,
    Order,
    PolicySnapshot,
    RefundDestination,
    Replacement,
    ReplacementStatus,
    ReplacementTiming,
    Resolution,
    Return,
    ReturnLine,
    ReturnStatus,
)
from shared.resolution_models import ReplacementLine
from shared.rules import FieldProblem

S, R = ReturnStatus, ReplacementStatus

# The order system's answers (`PUT /v1/returns/{id}/replacement`) -> the return statuses they apply
# in. Which replacement statuses they apply to is in `ship` and `give_up`.
ANSWERED_IN: dict[str, frozenset[ReturnStatus]] = {
    "ship_replacement": frozenset({S.AUTHORIZED, S.SHIPPED, S.RECEIVED}),
    "replacement_unavailable": frozenset({S.REQUESTED, S.AUTHORIZED, S.SHIPPED, S.RECEIVED}),
}
EVENT_OF = {
    "ship_replacement": "return.replacement_shipped",
    "replacement_unavailable": "return.replacement_unavailable",
}


# ---- the request ----------------------------------------------------------------------------


def check_resolution(
    order: Order, request: ReturnRequest, offers_replacements: bool, rules: MarketplaceRules
) -> list[FieldProblem]:
    """What the request asks instead of a refund to its payment, against the settings, the seller's
    policy and the order's listings."""
    problems = []
    replacing = request.resolution == Resolution.REPLACEMENT
    if replacing and not rules.replacements_allowed:
        problems.append(FieldProblem("resolution", "replacements are not offered on this marketplace"))
    elif replacing and not offers_replacements:
        problems.append(FieldProblem("resolution", "this seller does not offer replacements"))
    if request.refund_to == RefundDestination.STORE_CREDIT and not rules.store_credit_allowed:
        problems.append(FieldProblem("refund_to", "refunds to store credit are not offered on this marketplace"))
    for i, wanted in enumerate(request.lines):
        field = f"lines[{i}].replacement_sku"
        if wanted.replacement_sku is None:
            continue
        if not replacing:
            problems.append(FieldProblem(field, "only a replacement names a SKU to send"))
            continue
        line = order.line(wanted.line_id)
        if line is None or wanted.replacement_sku == line.sku:
            continue  # an unknown line is reported as such; its own SKU is always fine
        variant = next((v for v in line.variants if v.sku == wanted.replacement_sku), None)
        if variant is None:
            problems.append(FieldProblem(field, "not a SKU of this listing"))
        elif variant.unit_price != line.unit_price:
            problems.append(
                FieldProblem(
                    field,
                    f"costs {variant.unit_price.amount} {variant.unit_price.currency}, the returned item "
                    f"{line.unit_price.amount} {line.unit_price.currency}: a replacement must cost the same",
                )
            )
    return problems


def timing(policy: PolicySnapshot, fault: Fault) -> ReplacementTiming:
    """Ahead of the item only when the seller says so and the return is the seller's fault."""
    if policy.replacement_ships == ReplacementTiming.AT_AUTHORIZATION and fault == Fault.SELLER:
        return ReplacementTiming.AT_AUTHORIZATION
    return ReplacementTiming.AT_RECEIPT


def requested(lines: list[ReturnLine], policy: PolicySnapshot, fault: Fault) -> Replacement:
    """The replacement a new return asks for (its lines carry `replacement_sku`)."""
    return Replacement(
        status=R.REQUESTED,
        ships=timing(policy, fault),
        lines=[
            ReplacementLine(line_id=line.line_id, sku=line.replacement_sku or line.sku, quantity=line.quantity)
            for line in lines
        ],
    )


# ---- what follows from a transition ---------------------------------------------------------


def _returnless(ret: Return) -> bool:
    return ret.authorization is not None and ret.authorization.returnless


def arrived(ret: Return) -> dict[str, int]:
    """Per line, the units that came back to be replaced (`ReceivedLine.came_back_for`, as for a refund)."""
    units: dict[str, int] = {}
    faults = {line.line_id: line.fault for line in ret.lines}
    for received in ret.receipt.lines if ret.receipt is not None else []:
        if received.came_back_for(faults.get(received.line_id, Fault.SELLER)):
            units[received.line_id] = units.get(received.line_id, 0) + received.quantity
    return units


def due_for_order(ret: Return) -> bool:
    """Authorized, when it ships ahead of the item or no item comes back; else once received, when
    something came back (with nothing back, nothing is replaced: the seller or an agent decides)."""
    if not ret.replacing() or ret.replacement is None or ret.replacement.status != R.REQUESTED:
        return False
    if ret.status == S.AUTHORIZED:
        return ret.replacement.ships == ReplacementTiming.AT_AUTHORIZATION or _returnless(ret)
    return ret.status == S.RECEIVED and any(arrived(ret).values())


def due_for_replaced(ret: Return) -> bool:
    """The replacement shipped and the item is back (or was not asked back): nothing is left to do."""
    if not ret.replacing() or ret.replacement is None or ret.replacement.status != R.SHIPPED:
        return False
    return ret.status == S.RECEIVED or (ret.status == S.AUTHORIZED and _returnless(ret))


def order(ret: Return, now: datetime) -> Return:
    if ret.replacement is None or not due_for_order(ret):
        raise IllegalTransition("order_replacement", ret.status, "no replacement is due to be ordered")
    lines = ret.replacement.lines
    if ret.status == S.RECEIVED:  # ordered once the item is back: only what came back is replaced
        back = arrived(ret)
        lines = [
            line.model_copy(update={"quantity": min(line.quantity, back.get(line.line_id, 0))})
            for line in lines
            if back.get(line.line_id, 0) > 0
        ]
    ordered = ret.replacement.model_copy(update={"status": R.ORDERED, "ordered_at": now, "lines": lines})
    # An offer to keep the item can no longer be accepted once a replacement is ordered: it lapses.
    changes = {"replacement": ordered} | lapsed_offer(ret, now)
    return advance(ret, "order_replacement", PLATFORM, now, "Replacement ordered.", **changes)


def replace(ret: Return, now: datetime) -> Return:
    """The return ends `replaced` (domain.ALLOWED["replace"]); when is `due_for_replaced`'s."""
    if ret.status not in ALLOWED["replace"]:
        raise IllegalTransition("replace", ret.status)
    return advance(ret, "replace", PLATFORM, now, "Every line replaced: nothing to refund.")


def follow_ups(ret: Return, now: datetime) -> list[tuple[str, Return]]:
    """The versions that follow from `ret` at once, each with its event (none, usually)."""
    out: list[tuple[str, Return]] = []
    if due_for_order(ret):
        ret = order(ret, now)
        out.append(("return.replacement_ordered", ret))
    if due_for_replaced(ret):
        ret = replace(ret, now)
        out.append(("return.replaced", ret))
    return out


def with_follow_ups(event_type: str, after: Return, now: datetime) -> list[tuple[str | None, Return]]:
    """A transition's (event, version) and what follows from it: one store write for all
    (`ReturnsStore.apply`'s changes)."""
    return [(event_type, after), *follow_ups(after, now)]


# ---- the order system's answers -------------------------------------------------------------


def _replacement_of(ret: Return, action: str) -> Replacement:
    if ret.replacement is None:
        raise IllegalTransition(action, ret.status, "this return asked for no replacement")
    return ret.replacement


def _answered_in(ret: Return, action: str) -> None:
    if ret.status not in ANSWERED_IN[action]:
        raise IllegalTransition(action, ret.status, f"the return is {ret.status}: its replacement is settled")


def ship(ret: Return, body: ReplacementBody, actor: Actor, now: datetime) -> Return:
    """The replacement left: `ret` itself (nothing to write) when this very shipment was recorded."""
    missing = [
        FieldProblem(f, "required when the replacement shipped")
        for f in ("carrier", "tracking_number")
        if getattr(body, f) is None
    ]
    if missing:
        raise PolicyViolation(missing)
    replacement = _replacement_of(ret, "ship_replacement")
    if replacement.status == R.SHIPPED:
        if (replacement.carrier, replacement.tracking_number) == (body.carrier, body.tracking_number):
            return ret  # the order system retried its confirmation
        raise IllegalTransition(
            "ship_replacement",
            ret.status,
            f"the replacement already shipped with {replacement.carrier} {replacement.tracking_number}",
        )
    if replacement.status != R.ORDERED:
        raise IllegalTransition(
            "ship_replacement", ret.status, f"the replacement is {replacement.status}: only an ordered one ships"
        )
    _answered_in(ret, "ship_replacement")
    shipped = replacement.model_copy(
        update={
            "status": R.SHIPPED,
            "shipped_at": now,
            "carrier": body.carrier,
            "tracking_number": body.tracking_number,
            "note": body.note or replacement.note,
        }
    )
    return advance(ret, "ship_replacement", actor, now, body.note, replacement=shipped)


def give_up(ret: Return, body: ReplacementBody, actor: Actor, now: datetime, rules: MarketplaceRules) -> Return:
    """The seller cannot replace: the lines are refunded instead. An item already back is refunded
    by the usual deadline, counted from now (the receipt set none)."""
    extra = [
        FieldProblem(f, "only a shipped replacement has one")
        for f in ("carrier", "tracking_number")
        if getattr(body, f) is not None
    ]
    if extra:
        raise PolicyViolation(extra)
    replacement = _replacement_of(ret, "replacement_unavailable")
    if replacement.status == R.UNAVAILABLE:
        return ret  # said before
    if ret.settlement is not None:  # the buyer took an offer instead: nothing falls back to a refund
        raise IllegalTransition("replacement_unavailable", ret.status, KEPT_ITEM)
    if replacement.status not in (R.REQUESTED, R.ORDERED):
        raise IllegalTransition(
            "replacement_unavailable", ret.status, f"the replacement is already {replacement.status}"
        )
    _answered_in(ret, "replacement_unavailable")
    changes: dict[str, object] = {
        "replacement": replacement.model_copy(
            update={"status": R.UNAVAILABLE, "unavailable_at": now, "note": body.note or replacement.note}
        )
    }
    if ret.status == S.RECEIVED:
        changes["refund_due_at"] = rules.refund_due(now, ret.marketplace)
    return advance(ret, "replacement_unavailable", actor, now, body.note, **changes)
