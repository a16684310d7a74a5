"""The Return (RMA) aggregate's state machine (docs/product.md §5): pure functions, each one transition.

Each function takes the current `Return` and answers the next one (version + 1, a timeline entry)
or raises `IllegalTransition` (409) / `PolicyViolation` (422 naming the field). No I/O here.
"""

from __future__ import annotations

from datetime import datetime

from services.returns.dispositions import default_disposition
from services.returns.policy import (
    MarketplaceRules,
    PolicyViolation,
    invalid_rejection,
    restocking_fee_percent,
    return_shipping_payer,
    seller_must_pay_shipping,
)
from services.returns.schemas import AuthorizeBody, CloseBody, ReceiveBody, RejectBody, ShipBody
from shared import rules
from shared.models import (
    Actor,
    Authorization,
    Closure,
    Fault,
    Feedback,
    ItemCondition,
    LabelType,
    Receipt,
    ReceivedLine,
    Refund,
    RefundKind,
    RefundSummary,
    Rejection,
    ReplacementStatus,
    Return,
    ReturnStatus,
    Shipment,
    TimelineEntry,
    same_named,
)
from shared.resolution_models import OfferStatus
from shared.rules import FieldProblem

S = ReturnStatus
PLATFORM = Actor(role="platform", id="returns")

# action -> statuses it may start from; anything else is a 409.
ALLOWED: dict[str, frozenset[ReturnStatus]] = {
    "authorize": frozenset({S.REQUESTED}),
    "reject": frozenset({S.REQUESTED}),
    "close": frozenset({S.REQUESTED, S.AUTHORIZED}),
    "ship": frozenset({S.AUTHORIZED}),
    "receive": frozenset({S.AUTHORIZED, S.SHIPPED}),
    "expire": frozenset({S.AUTHORIZED}),
    "refund": frozenset({S.AUTHORIZED, S.SHIPPED, S.RECEIVED}),
    "remind": frozenset({S.REQUESTED}),
    "feedback": frozenset({S.RECEIVED, S.REFUNDED, S.REJECTED, S.CLOSED, S.EXPIRED, S.REPLACED}),
    "replace": frozenset({S.AUTHORIZED, S.RECEIVED}),  # services/returns/replacements.py
}

# action -> the status it enters, stamped with the time in `<status>_at`; other actions keep the status.
ENTERS: dict[str, ReturnStatus] = {
    "authorize": S.AUTHORIZED,
    "reject": S.REJECTED,
    "close": S.CLOSED,
    "ship": S.SHIPPED,
    "receive": S.RECEIVED,
    "expire": S.EXPIRED,
    "refund": S.REFUNDED,
    "replace": S.REPLACED,
}


# Once the buyer accepted an offer to keep the item, the item's journey is over: these are refused.
KEPT_ITEM = "the buyer accepted an offer to keep the item"
REFUSED_ONCE_KEPT = frozenset({"authorize", "reject", "close", "ship", "receive", "expire", "remind"})
# A keep-it offer is paid before any item comes back: its refund ends the return from these.
OFFER_REFUNDABLE = frozenset({S.REQUESTED, S.AUTHORIZED, S.SHIPPED})


class IllegalTransition(rules.IllegalTransition):
    noun = "return"


def _require(ret: Return, action: str) -> None:
    if action in REFUSED_ONCE_KEPT and ret.settlement is not None and ret.settlement.kept_item:
        raise IllegalTransition(action, ret.status, KEPT_ITEM)
    if ret.status not in ALLOWED[action]:
        raise IllegalTransition(action, ret.status)


def lapsed_offer(ret: Return, now: datetime) -> dict[str, object]:
    """The change that lapses the return's open offer, if any: no event of its own, and no later
    `return.offer_expired` for an offer nobody may accept any more."""
    offer = ret.open_offer()
    if offer is None:
        return {}
    lapsed = offer.model_copy(update={"status": OfferStatus.EXPIRED, "decided_at": now})
    return {"offers": [lapsed if o.offer_id == offer.offer_id else o for o in ret.offers]}


def advance(
    ret: Return, action: str, actor: Actor, now: datetime, note: str | None = None, **changes: object
) -> Return:
    """The next version: the status `action` enters (ENTERS) and its `<status>_at` time (unless
    `changes` give it), the changed fields, one more timeline entry."""
    status = ENTERS.get(action, ret.status)
    entered: dict[str, object] = {f"{status.value}_at": now} if action in ENTERS else {}
    entry = TimelineEntry(status=status, action=action, actor=actor, at=now, note=note)
    if status not in OFFER_REFUNDABLE:
        # The item came back or the return ended: an offer to keep it lapses with that step.
        entered |= lapsed_offer(ret, now)
    return ret.model_copy(
        update={
            **entered,
            **changes,
            "status": status,
            "version": ret.version + 1,
            "updated_at": now,
            "timeline": [*ret.timeline, entry],
        }
    )


# ---- seller's answer ------------------------------------------------------------------------


def build_authorization(ret: Return, body: AuthorizeBody, now: datetime, rules: MarketplaceRules) -> Authorization:
    """The seller's answer checked against the rules; who gave it (`automatic`, `late`) is the caller's."""
    must_pay = seller_must_pay_shipping(ret.fault, ret.seller.return_address.country, ret.marketplace)
    payer = body.return_shipping_paid_by
    if payer is None:
        chosen = body.label_type == LabelType.PREPAID or ret.policy.seller_pays_return_shipping
        payer = return_shipping_payer(ret.fault, ret.seller.return_address.country, ret.marketplace, chosen)
    problems = []
    if payer == Fault.BUYER and must_pay:
        problems.append(
            FieldProblem(
                "return_shipping_paid_by", "the seller pays return shipping when at fault or shipping from abroad"
            )
        )
    if body.returnless:
        if body.label_type is not None:
            problems.append(FieldProblem("label_type", "a refund without return has no label"))
        if problems:
            raise PolicyViolation(problems)
        return Authorization(
            label_type=None,
            return_shipping_paid_by=payer,
            returnless=True,
            instructions=body.instructions
            or (
                "Keep the item: your replacement is sent without it coming back."
                if ret.replacing()
                else "Keep the item: you are refunded without sending it back."
            ),
        )
    label = body.label_type or (LabelType.PREPAID if payer == Fault.SELLER else LabelType.UNPAID)
    if label == LabelType.PREPAID and payer == Fault.BUYER:
        problems.append(FieldProblem("label_type", "a prepaid label means the seller pays return shipping"))
    postage = None
    if label == LabelType.UNPAID:
        postage = body.return_postage or rules.postage(ret.currency)
        if postage is not None and postage.currency != ret.currency:
            problems.append(FieldProblem("return_postage.currency", f"must be the order's currency {ret.currency}"))
        elif postage is not None and postage.amount < 0:
            problems.append(FieldProblem("return_postage.amount", "must not be negative"))
    if problems:
        raise PolicyViolation(problems)
    ship_by = rules.ship_by(now)
    # Return-shipping insurance (CN): the insurer refunds the postage the buyer pays; the seller never does.
    insured = payer == Fault.BUYER and any(line.return_shipping_insurance for line in ret.lines)
    instructions = body.instructions or (
        "Print the prepaid label, pack the item and hand it to the carrier."
        if label == LabelType.PREPAID
        else "Ship the item to the seller's return address with a carrier of your choice and keep the tracking number."
    )
    return Authorization(
        label_type=label,
        **same_named(body, ("carrier", "tracking_number", "label_url")),
        return_shipping_paid_by=payer,
        return_postage=postage,
        insured_return_postage=postage if insured else None,
        returnless=False,
        instructions=instructions,
        ship_by=ship_by,
    )


def authorize(
    ret: Return,
    body: AuthorizeBody,
    actor: Actor,
    now: datetime,
    rules: MarketplaceRules,
    *,
    automatic: bool = False,
    late: bool = False,
) -> Return:
    _require(ret, "authorize")
    auth = build_authorization(ret, body, now, rules).model_copy(update={"automatic": automatic, "late": late})
    changes = {"authorization": auth, "ship_by": auth.ship_by, "responded_at": ret.responded_at or now}
    return advance(ret, "authorize", actor, now, body.note, **changes)


def platform_authorize(ret: Return, now: datetime, rules: MarketplaceRules) -> Return:
    """The seller let the 48 h deadline pass: prepaid label at the seller's expense, counted late."""
    body = AuthorizeBody(
        label_type=LabelType.PREPAID,
        return_shipping_paid_by=Fault.SELLER,
        note="Authorized by the platform: the seller did not answer in time.",
    )
    return authorize(ret, body, PLATFORM, now, rules, automatic=True, late=True)


def reject(ret: Return, body: RejectBody, actor: Actor, now: datetime) -> Return:
    _require(ret, "reject")
    rejection = Rejection(
        reason_code=body.reason_code.value, note=body.note, invalid=invalid_rejection(ret.in_policy, ret.fault)
    )
    return advance(ret, "reject", actor, now, body.note, rejection=rejection, responded_at=ret.responded_at or now)


def close(ret: Return, body: CloseBody, actor: Actor, now: datetime) -> Return:
    _require(ret, "close")
    if ret.authorization is not None and ret.authorization.returnless:
        raise IllegalTransition("close", ret.status, "a refund without return is already under way")
    if ret.replacement_status() in (ReplacementStatus.ORDERED, ReplacementStatus.SHIPPED):
        raise IllegalTransition(
            "close", ret.status, "its replacement is ordered or sent (an ordered one may be reported unavailable first)"
        )
    return advance(ret, "close", actor, now, body.note, closure=Closure(code=body.code.value, note=body.note))


# ---- the item's journey ---------------------------------------------------------------------


def _expects_item(ret: Return, action: str) -> None:
    if ret.authorization is not None and ret.authorization.returnless:
        raise IllegalTransition(action, ret.status, "this return was refunded without the item coming back")


def ship(ret: Return, body: ShipBody, actor: Actor, now: datetime) -> Return:
    _require(ret, "ship")
    _expects_item(ret, "ship")
    if ret.ship_by is not None and now > ret.ship_by:
        raise IllegalTransition(
            "ship", ret.status, f"the authorization has expired: it was valid until {ret.ship_by.isoformat()}"
        )
    shipment = Shipment(carrier=body.carrier, tracking_number=body.tracking_number)
    return advance(ret, "ship", actor, now, body.note, shipment=shipment)


def receive(ret: Return, body: ReceiveBody, actor: Actor, now: datetime, rules: MarketplaceRules) -> Return:
    _require(ret, "receive")
    _expects_item(ret, "receive")
    wanted = {line.line_id: line.quantity for line in ret.lines}
    problems, seen = [], set()
    for i, line in enumerate(body.lines):
        if line.line_id not in wanted:
            problems.append(FieldProblem(f"lines[{i}].line_id", "not a line of this return"))
            continue
        if line.line_id in seen:
            problems.append(FieldProblem(f"lines[{i}].line_id", "listed twice"))
        seen.add(line.line_id)
        if line.quantity > wanted[line.line_id]:
            problems.append(
                FieldProblem(f"lines[{i}].quantity", f"at most {wanted[line.line_id]} units were returned on this line")
            )
        if line.condition == "missing" and line.quantity != 0:
            problems.append(FieldProblem(f"lines[{i}].quantity", "a missing item is received with quantity 0"))
        if line.disposition is not None and line.quantity == 0:
            problems.append(FieldProblem(f"lines[{i}].disposition", "nothing arrived on this line to dispose of"))
    if problems:
        raise PolicyViolation(problems)
    returned = {line.line_id: line for line in ret.lines}
    # Each line carries the restocking fee that applies to it (the refunds service applies it as is).
    received = [
        ReceivedLine(
            line_id=line.line_id,
            quantity=line.quantity,
            condition=line.condition,
            restocking_fee_percent=restocking_fee_percent(
                returned[line.line_id].fault, line.condition, ret.policy, rules, withdrawal=ret.withdrawal
            ),
            disposition=line.disposition
            or default_disposition(line.condition, line.quantity, returned[line.line_id].reason_code),
        )
        for line in body.lines
    ]
    # Lines the seller does not list did not arrive: recorded so refunds reads one entry per line.
    received += [
        ReceivedLine(line_id=line_id, quantity=0, condition=ItemCondition.MISSING)
        for line_id in wanted
        if line_id not in seen
    ]
    # A replacing return has nothing to refund (services/returns/replacements.py orders or settles it).
    refund_due_at = None if ret.replacing() else rules.refund_due(now, ret.marketplace)
    return advance(ret, "receive", actor, now, body.note, receipt=Receipt(lines=received), refund_due_at=refund_due_at)


def expire(ret: Return, now: datetime) -> Return:
    _require(ret, "expire")
    _expects_item(ret, "expire")
    return advance(ret, "expire", PLATFORM, now, "Nothing was shipped while the authorization was valid.")


def remind(ret: Return, now: datetime) -> Return:
    _require(ret, "remind")
    return advance(ret, "remind", PLATFORM, now, f"Seller reminded: answer due by {ret.response_due_at.isoformat()}.")


# ---- after the fact -------------------------------------------------------------------------


def record_feedback(ret: Return, resolved: bool, actor: Actor, now: datetime, note: str | None = None) -> Return:
    _require(ret, "feedback")
    if ret.feedback is not None:
        raise IllegalTransition("feedback", ret.status, "feedback was already given for this return")
    if ret.status == S.RECEIVED and not ret.replacing():
        # Its refund is on its way: `return.refunded` (the refunds service's) takes the return's next
        # version, which a version taken here first would make subscribers drop as stale.
        raise IllegalTransition("feedback", ret.status, "the return's refund is still to come: answer once refunded")
    return advance(ret, "feedback", actor, now, note, feedback=Feedback(resolved=resolved, at=now))


def mark_refunded(ret: Return, refund: Refund, now: datetime) -> Return | None:
    """`return.refunded` from the refunds service; None when there is nothing (more) to do."""
    if ret.status == S.REFUNDED:
        return None
    if refund.kind == RefundKind.OFFER:
        if ret.settlement is None or ret.settlement.offer_id != refund.offer_id:
            raise IllegalTransition("refund", ret.status, f"{refund.offer_id} is not the offer the buyer accepted")
        if ret.status not in OFFER_REFUNDABLE:
            raise IllegalTransition("refund", ret.status)
    else:
        _require(ret, "refund")
    summary = RefundSummary(refund_id=refund.refund_id, amount=refund.amount, automatic=refund.automatic)
    return advance(ret, "refund", refund.actor, now, refund=summary, refunded_at=refund.issued_at or now)


def refund_failure_note(refund: Refund) -> str:
    return f"{refund.refund_id} attempt {refund.attempts}: {refund.failure_reason or 'unknown failure'}"


def record_refund_failure(ret: Return, refund: Refund, now: datetime) -> Return | None:
    note = refund_failure_note(refund)
    if note in ret.refund_failures:
        return None
    return advance(ret, "refund_failed", refund.actor, now, note, refund_failures=[*ret.refund_failures, note])
