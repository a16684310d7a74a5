"""What the warehouse does with a received unit (docs/product.md §12): the default, a pure function."""

from __future__ import annotations

from shared.models import Disposition, ItemCondition, ReasonCode

# A unit's condition decides, unless its reason does (below).
BY_CONDITION: dict[ItemCondition, Disposition | None] = {
    ItemCondition.SELLABLE: Disposition.RESTOCK,
    ItemCondition.OPENED: Disposition.REFURBISH,
    ItemCondition.USED: Disposition.REFURBISH,
    ItemCondition.DAMAGED_BY_BUYER: Disposition.DISPOSE,
    ItemCondition.DAMAGED_IN_TRANSIT: Disposition.DISPOSE,
    ItemCondition.WRONG_ITEM: Disposition.RETURN_TO_VENDOR,
    ItemCondition.MISSING: None,
}


def default_disposition(condition: ItemCondition, quantity: int, reason: ReasonCode) -> Disposition | None:
    """None when nothing arrived; a defective unit goes back to its vendor whatever it looks like
    (it looks sellable, and would be sold broken again)."""
    if quantity == 0 or condition == ItemCondition.MISSING:
        return None
    if reason == ReasonCode.DEFECTIVE:
        return Disposition.RETURN_TO_VENDOR
    return BY_CONDITION[condition]
