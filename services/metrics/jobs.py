"""Periodic review of buyer flags: returns age out of the 90-day window without any new event."""

from __future__ import annotations

import logging

from services.metrics.flags import BuyerFlags
from shared.periodic import Periodic

log = logging.getLogger(__name__)


def flag_review(flags: BuyerFlags, interval_s: float) -> Periodic:
    async def review() -> None:
        reviewed = await flags.review_due()
        if reviewed:
            log.info("buyer flags reviewed", extra={"buyers": reviewed})

    return Periodic("metrics:flag-review", review, interval_s)
