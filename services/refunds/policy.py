"""The refund amount (docs/product.md §6): pure functions of the return, the order and the seller's choices.

The arithmetic only. The rules behind it are the returns service's (services/returns/policy.py),
read from the return: each line's `fault`, the `restocking_fee_percent` of each received line,
`authorization.return_shipping_paid_by`, `authorization.insured_return_postage`. Nothing here caps or
second-guesses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from shared.models import (
    Breakdown,
    Fault,
    Order,
    RefundLine,
    Return,
    ReturnLine,
)
from shared.money import AmountOutOfRange, Money
from shared.postage import insured_return_shipping, postage_paid_by_buyer
from shared.rules import FieldProblem, RulesBroken

NO_FEE = Decimal(0)


class RefundRuleBroken(RulesBroken, ValueError):
    """The refund breaks a rule (a 422 naming each field)."""


@dataclass(frozen=True)
class LineChoice:
    """A line and how many of its units to refund (a partial refund)."""

    line_id: str
    quantity: int


@dataclass(frozen=True)
class Units:
    """The units of a line that may be refunded, as (restocking fee percent, units), lowest percent first."""

    by_fee: tuple[tuple[Decimal, int], ...]

    @classmethod
    def without_fee(cls, quantity: int) -> Units:
        return cls(((NO_FEE, quantity),))

    @property
    def refundable(self) -> int:
        return sum(count for _, count in self.by_fee)

    def take(self, quantity: int) -> Units:
        """`quantity` of these units, those with the lowest fee first.

        A partial refund is assumed to leave out the units that carry a fee first: the buyer's benefit.
        """
        taken, left = [], quantity
        for percent, count in self.by_fee:
            if left <= 0:
                break
            taken.append((percent, min(count, left)))
            left -= count
        return Units(tuple(taken))


def refundable_units(ret: Return) -> dict[str, Units]:
    """Per return line, the units that came back (all of them, without a fee, for a returnless refund)."""
    units: dict[str, Units] = {}
    for line in ret.lines:
        if ret.receipt is None:
            units[line.line_id] = Units.without_fee(line.quantity)
            continue
        by_fee: dict[Decimal, int] = {}
        for received in ret.receipt.lines:
            if received.line_id == line.line_id and received.came_back_for(line.fault):
                percent = received.restocking_fee_percent
                by_fee[percent] = by_fee.get(percent, 0) + received.quantity
        units[line.line_id] = Units(tuple(sorted(by_fee.items()))).take(line.quantity)
    return units


def return_shipping_owed(ret: Return) -> Money | None:
    """Postage the buyer paid on an unpaid label although the seller owes it."""
    auth = ret.authorization
    if auth is None or auth.return_shipping_paid_by != Fault.SELLER:
        return None
    return postage_paid_by_buyer(ret)


@dataclass(frozen=True)
class CameBack:
    """What one return of an order brought back (or had refunded without coming back): the units of
    each line its computed refund pays for, and whether the seller was at fault for it."""

    return_id: str
    units: tuple[tuple[str, int], ...]
    seller_fault: bool


def came_back(ret: Return) -> CameBack:
    units = tuple((line_id, u.refundable) for line_id, u in refundable_units(ret).items())
    return CameBack(ret.return_id, units, ret.fault == Fault.SELLER)


def outbound_carrier(order: Order, returns: Sequence[CameBack]) -> str | None:
    """The return whose refund carries the order's outbound shipping, if any: `returns` in the order
    their refunds opened, the first whose refund brings the order's count of units back to every unit
    delivered, when the seller was at fault for it or an earlier one (as for the lines of one return).

    Decided from what came back, not from what was asked: a return closed or expired unshipped brings
    nothing back, and the answer does not depend on which return was requested first.
    """
    back: dict[str, int] = {}
    seller_fault = False
    for entry in returns:
        for line_id, units in entry.units:
            back[line_id] = back.get(line_id, 0) + units
        seller_fault = seller_fault or entry.seller_fault
        if _every_unit(order, back):
            return entry.return_id if seller_fault else None
    return None


def whole_by_itself(order: Order, back: CameBack) -> bool:
    """This return alone brings back every unit delivered: no other return of the order can hold a
    unit (the returns service never lets an order's live returns ask for more than was delivered),
    so it decides the outbound shipping on its own."""
    units: dict[str, int] = {}
    for line_id, count in back.units:
        units[line_id] = units.get(line_id, 0) + count
    return _every_unit(order, units)


def _every_unit(order: Order, back: dict[str, int]) -> bool:
    return all(back.get(line.line_id, 0) >= line.quantity for line in order.lines)


def return_refund(
    ret: Return,
    outbound: Money,
    *,
    lines: Sequence[LineChoice] | None = None,
    return_shipping_concession: Money | None = None,
    other_concession: Money | None = None,
) -> Breakdown:
    """The refund of a received (or returnless) return; `lines` and concessions are the seller's choices.

    `outbound` is the order's outbound shipping when this return carries it (`outbound_carrier`),
    else zero; it is refunded when every unit of the return is. Without choices this is the computed
    refund of auto mode and of the refund deadline.
    """
    currency = ret.currency
    units = refundable_units(ret)
    problems = _concession_problems(currency, return_shipping_concession, other_concession)
    chosen = (
        {line_id: u.refundable for line_id, u in units.items()}
        if lines is None
        else _chosen_quantities(lines, units, problems)
    )
    if problems:
        raise RefundRuleBroken(problems)
    refund_lines = []
    for line in ret.lines:
        quantity = chosen.get(line.line_id, 0)
        if quantity > 0:
            refund_lines.append(_refund_line(line, units[line.line_id].take(quantity)))
    whole_refund = all(chosen.get(line.line_id, 0) == line.quantity for line in ret.lines)
    if not whole_refund:
        outbound = Money.zero(currency)
    concession = return_shipping_concession
    if concession is None:
        concession = return_shipping_owed(ret) or Money.zero(currency)
    breakdown = _breakdown(
        currency,
        refund_lines,
        outbound,
        concession,
        other_concession,
        chosen={"return_shipping_concession": return_shipping_concession, "other_concession": other_concession},
    )
    # Whatever the seller chooses, the insurer's line comes with the return's refund, apart from the total.
    return breakdown.model_copy(update={"insured_return_shipping": insured_return_shipping(ret)})


def direct_refund(
    order: Order,
    *,
    lines: Sequence[LineChoice] | None = None,
    refund_shipping: bool = False,
    other_concession: Money | None = None,
) -> Breakdown:
    """A seller's refund of an order without a return: every line and the shipping when `lines` is None."""
    currency = order.currency
    problems = _concession_problems(currency, None, other_concession)
    if lines is None:
        chosen = {line.line_id: line.quantity for line in order.lines}
        refund_shipping = True
    else:
        ordered = {line.line_id: Units.without_fee(line.quantity) for line in order.lines}
        chosen = _chosen_quantities(lines, ordered, problems, what="ordered")
    if problems:
        raise RefundRuleBroken(problems)
    refund_lines = [
        RefundLine(
            line_id=line.line_id,
            quantity=chosen[line.line_id],
            unit_price=line.unit_price,
            subtotal=line.unit_price.times(chosen[line.line_id]),
            restocking_fee=Money.zero(currency),
        )
        for line in order.lines
        if chosen.get(line.line_id, 0) > 0
    ]
    outbound = order.shipping_paid if refund_shipping else Money.zero(currency)
    return _breakdown(
        currency,
        refund_lines,
        outbound,
        Money.zero(currency),
        other_concession,
        chosen={"other_concession": other_concession},
    )


def _refund_line(line: ReturnLine, units: Units) -> RefundLine:
    """The refund of these units of a line; each group's fee rounds half-up on its own."""
    quantity = units.refundable
    fee = sum(
        (line.unit_price.times(count).percent(percent) for percent, count in units.by_fee if percent),
        Money.zero(line.unit_price.currency),
    )
    return RefundLine(
        line_id=line.line_id,
        quantity=quantity,
        unit_price=line.unit_price,
        subtotal=line.unit_price.times(quantity),
        restocking_fee=fee,
    )


def _chosen_quantities(
    lines: Sequence[LineChoice], available: dict[str, Units], problems: list[FieldProblem], what: str = "received"
) -> dict[str, int]:
    chosen: dict[str, int] = {}
    for index, choice in enumerate(lines):
        if choice.line_id not in available:
            problems.append(FieldProblem(f"lines[{index}].line_id", f"no such line {what}"))
        elif choice.line_id in chosen:
            problems.append(FieldProblem(f"lines[{index}].line_id", "line listed twice"))
        elif choice.quantity < 0:
            problems.append(FieldProblem(f"lines[{index}].quantity", "must not be negative"))
        elif choice.quantity > available[choice.line_id].refundable:
            most = available[choice.line_id].refundable
            problems.append(FieldProblem(f"lines[{index}].quantity", f"at most {most} {what}"))
        else:
            chosen[choice.line_id] = choice.quantity
    return chosen


def _concession_problems(currency: str, return_shipping: Money | None, other: Money | None) -> list[FieldProblem]:
    problems = []
    for name, money in (("return_shipping_concession", return_shipping), ("other_concession", other)):
        if money is None:
            continue
        if money.currency != currency:
            problems.append(FieldProblem(f"{name}.currency", f"must be the order's currency {currency}"))
        if money.amount < 0:
            problems.append(FieldProblem(f"{name}.amount", "must not be negative"))
    return problems


def _breakdown(
    currency: str,
    lines: list[RefundLine],
    outbound: Money,
    return_shipping: Money,
    other: Money | None,
    *,
    chosen: dict[str, Money | None],
) -> Breakdown:
    """The sum of the parts; `chosen` names the caller's amounts, to blame when the sum overflows."""
    items = sum((line.subtotal for line in lines), Money.zero(currency))
    fee = sum((line.restocking_fee for line in lines), Money.zero(currency))
    other = other or Money.zero(currency)
    try:
        total = items - fee + outbound + return_shipping + other
    except AmountOutOfRange:
        blamed = [f"{name}.amount" for name, money in chosen.items() if money is not None] or ["lines"]
        raise RefundRuleBroken(
            [FieldProblem(name, "the refund would not fit a 64-bit amount") for name in blamed]
        ) from None
    return Breakdown(
        lines=lines,
        items=items,
        restocking_fee=fee,
        outbound_shipping=outbound,
        return_shipping_concession=return_shipping,
        other_concession=other,
        total=total,
    )
