"""A buyer's request checked against the order snapshot and the rules, and the return it opens."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from services.returns import replacements
from services.returns.domain import PLATFORM, authorize
from services.returns.policy import (
    MarketplaceRules,
    PolicyViolation,
    SellerPolicy,
    days_since_delivery,
    fault_of,
    in_window,
    is_whole_order,
    is_withdrawal,
    may_auto_authorize,
    overall_fault,
    qualifies_for_returnless,
    returnable_quantity,
    window_days,
)
from services.returns.schemas import AuthorizeBody, ReturnRequest
from shared.models import (
    Actor,
    Fault,
    Order,
    ReplacementStatus,
    Resolution,
    Return,
    ReturnLine,
    ReturnStatus,
    TimelineEntry,
    same_named,
)
from shared.rules import FieldProblem

# Statuses whose units never came back (or never will): they don't count against the order's quantity.
RELEASED = frozenset({ReturnStatus.REJECTED, ReturnStatus.CLOSED, ReturnStatus.EXPIRED})


def returned_so_far(returns: list[Return]) -> dict[str, int]:
    """Units per order line claimed by the order's live returns, and by those whose replacement was
    sent ahead of the item even if they expired since: the buyer has those units' replacement."""
    totals: dict[str, int] = {}
    for ret in returns:
        if ret.status in RELEASED and ret.replacement_status() != ReplacementStatus.SHIPPED:
            continue
        for line in ret.lines:
            totals[line.line_id] = totals.get(line.line_id, 0) + line.quantity
    return totals


def check_request(
    order: Order,
    request: ReturnRequest,
    policy: SellerPolicy,
    rules: MarketplaceRules,
    already_returned: Mapping[str, int],
    now: datetime,
) -> list[FieldProblem]:
    """Every rule the request breaks, by field. `policy_exception` lifts the window and category."""
    problems = replacements.check_resolution(order, request, policy.offers_replacements, rules)
    days = days_since_delivery(order.delivered_at, now, order.marketplace)
    if days < 0:
        problems.append(FieldProblem("order_id", "the order has not been delivered yet"))
    seen: set[str] = set()
    for i, wanted in enumerate(request.lines):
        line = order.line(wanted.line_id)
        if line is None:
            problems.append(FieldProblem(f"lines[{i}].line_id", "not a line of this order"))
            continue
        if wanted.line_id in seen:
            problems.append(FieldProblem(f"lines[{i}].line_id", "listed twice in this request"))
        seen.add(wanted.line_id)
        left = returnable_quantity(line, already_returned)
        if wanted.quantity > left:
            problems.append(
                FieldProblem(
                    f"lines[{i}].quantity", f"only {max(left, 0)} of {line.quantity} units can still be returned"
                )
            )
        if request.policy_exception:
            continue
        seller_fault = fault_of(wanted.reason_code) == Fault.SELLER
        if line.category in rules.non_returnable_categories:
            problems.append(
                FieldProblem(f"lines[{i}].line_id", f"items in category {line.category!r} are not returnable")
            )
        elif not seller_fault and line.category in rules.no_reason_excluded_categories:
            problems.append(
                FieldProblem(
                    f"lines[{i}].reason_code",
                    f"items in category {line.category!r} can only be returned for a quality problem",
                )
            )
        elif days >= 0 and not in_window(order, line, policy, rules, now, seller_fault):
            problems.append(
                FieldProblem(
                    f"lines[{i}].line_id",
                    f"the {window_days(policy, line.category, rules, seller_fault)}-day "
                    f"return window closed ({days} days since delivery)",
                )
            )
    return problems


def return_lines(order: Order, request: ReturnRequest, rules: MarketplaceRules) -> list[ReturnLine]:
    """The request's lines as the return carries them; insurance only where the marketplace offers it."""
    replacing = request.resolution == Resolution.REPLACEMENT
    lines = []
    for wanted in request.lines:
        line = order.line(wanted.line_id)
        if line is None:
            raise ValueError(f"line {wanted.line_id!r} is not on order {order.order_id}: check_request first")
        lines.append(
            # The order line's identity and price, the request's quantity, reason and comment.
            ReturnLine(
                **same_named(line, ("line_id", "sku", "title", "category", "unit_price")),
                **same_named(wanted, ("quantity", "reason_code", "comment")),
                fault=fault_of(wanted.reason_code),
                replacement_sku=(wanted.replacement_sku or line.sku) if replacing else None,
                return_shipping_insurance=line.return_shipping_insurance and rules.return_shipping_insurance,
            )
        )
    return lines


def open_return(
    order: Order,
    request: ReturnRequest,
    *,
    return_id: str,
    policy: SellerPolicy,
    rules: MarketplaceRules,
    already_returned: Mapping[str, int],
    buyer_flagged: bool,
    actor: Actor,
    now: datetime,
) -> list[tuple[str, Return]]:
    """The events of a new return, each with the return as it stands after it.

    `return.created` always; then `return.authorized` at once when the seller's policy says so
    (a refund without return under the threshold, or auto-authorization), and what follows from
    that (`return.replacement_ordered`).
    """
    problems = check_request(order, request, policy, rules, already_returned, now)
    if problems:
        raise PolicyViolation(problems)
    lines = return_lines(order, request, rules)
    in_policy = not request.policy_exception or not check_request(
        order, request.model_copy(update={"policy_exception": False}), policy, rules, already_returned, now
    )
    snapshot = policy.snapshot()
    created = Return(
        return_id=return_id,
        order_id=order.order_id,
        marketplace=order.marketplace,
        currency=order.currency,
        status=ReturnStatus.REQUESTED,
        version=1,
        buyer=order.buyer,
        seller=order.seller,
        lines=lines,
        fault=overall_fault(lines),
        in_policy=in_policy,
        withdrawal=is_withdrawal(lines, order.delivered_at, now, order.marketplace, rules),
        policy=snapshot,
        whole_order=is_whole_order(order, lines, already_returned),
        created_at=now,
        updated_at=now,
        response_due_at=rules.response_due(now),
        resolution=request.resolution,
        refund_to=request.refund_to,
        replacement=(
            replacements.requested(lines, snapshot, overall_fault(lines))
            if request.resolution == Resolution.REPLACEMENT
            else None
        ),
        timeline=[TimelineEntry(status=ReturnStatus.REQUESTED, action="request", actor=actor, at=now)],
    )
    changes = [("return.created", created)]
    if qualifies_for_returnless(lines, snapshot, in_policy=in_policy, buyer_flagged=buyer_flagged):
        note = "Replacement" if created.replacing() else "Refund"
        body = AuthorizeBody(
            returnless=True, note=f"{note} without return: every line is under the seller's threshold."
        )
        changes.append(("return.authorized", authorize(created, body, PLATFORM, now, rules, automatic=True)))
    elif may_auto_authorize(lines, snapshot, in_policy=in_policy, buyer_flagged=buyer_flagged, rules=rules):
        body = AuthorizeBody(note="Authorized at once by the seller's return policy.")
        changes.append(("return.authorized", authorize(created, body, PLATFORM, now, rules, automatic=True)))
    return changes + replacements.follow_ups(changes[-1][1], now)
