"""A scripted fortnight of two sellers and several buyers, as the events the metrics service sees.

Figures expected for the period [at(0), at(14)) are worked out by hand in the test module.
Buyer b9's orders reach the returns service by `PUT /v1/orders` only (no `order.delivered`), so
their 4th return crosses the rate rule (100 % of 4 orders) whatever order the events come in.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from shared.events import CloudEvent
from shared.models import ReasonCode as R
from shared.models import RefundStatus
from tests.unit.metrics.builders import (
    at,
    authorized,
    closed,
    feedback,
    order,
    order_event,
    received,
    refund,
    refund_event,
    rejected,
    requested,
    return_event,
    shipped,
)


def _lifecycle(*states):
    """One event per state of a return; the feedback step is `return.feedback_received`."""
    events = []
    for before, state in pairwise((None, *states)):
        kind = "return.feedback_received" if before is not None and state.feedback != before.feedback else None
        events.append(return_event(state, kind))
    return events


def events() -> list[CloudEvent]:
    out: list[CloudEvent] = []
    # ---- seller sA: orders delivered
    out += [
        order_event(order("oA1", buyer_id="b1", seller_id="sA", delivered_at=at(0), skus={"SKU-1": 2})),
        order_event(order("oA2", buyer_id="b2", seller_id="sA", delivered_at=at(1), skus={"SKU-1": 1, "SKU-2": 1})),
        order_event(order("oA3", buyer_id="b3", seller_id="sA", delivered_at=at(2), skus={"SKU-2": 4})),
    ]
    # ra1: answered in 2 h, shipped, received, refunded on time, but the buyer says "not resolved".
    s0 = requested(
        "ra1", order_id="oA1", buyer_id="b1", seller_id="sA", created_at=at(3), lines=[("SKU-1", 1, R.DEFECTIVE)]
    )
    s1 = authorized(s0, at(3, 2))
    s2 = shipped(s1, at(4))
    s3 = received(s2, at(5))
    s4 = feedback(s3, at(7), resolved=False)
    out += _lifecycle(s0, s1, s2, s3, s4)
    rf1 = refund(s3, issued_at=at(6), amount=1000)
    out += [refund_event(rf1, "return.refunded"), refund_event(rf1, "refund.issued")]
    # ra2: authorized by the platform at the deadline (late), auto-refunded late, negative feedback too.
    s0 = requested(
        "ra2", order_id="oA2", buyer_id="b2", seller_id="sA", created_at=at(4), lines=[("SKU-2", 1, R.WRONG_ITEM_SENT)]
    )
    s1 = authorized(s0, at(6), platform=True)
    s2 = received(s1, at(8))
    s3 = feedback(s2, at(13), resolved=False)
    out += _lifecycle(s0, s1, s2, s3)
    failed = refund(s2, issued_at=at(11), amount=1500, automatic=True, status=RefundStatus.FAILED, version=2)
    rf2 = refund(s2, issued_at=at(12), amount=1500, automatic=True, version=3)
    out += [
        refund_event(failed, "refund.failed"),
        refund_event(rf2, "return.refunded"),
        refund_event(rf2, "refund.issued"),
    ]
    # ra3: out of policy, rightly rejected in 5 h.
    s0 = requested(
        "ra3",
        order_id="oA3",
        buyer_id="b3",
        seller_id="sA",
        created_at=at(5),
        in_policy=False,
        lines=[("SKU-2", 2, R.NO_LONGER_NEEDED)],
    )
    out += _lifecycle(s0, rejected(s0, at(5, 5), invalid=False))
    # ra4: in policy, seller at fault, rejected anyway in 4 h: an invalid rejection.
    s0 = requested(
        "ra4", order_id="oA3", buyer_id="b3", seller_id="sA", created_at=at(10), lines=[("SKU-2", 1, R.DEFECTIVE)]
    )
    out += _lifecycle(s0, rejected(s0, at(10, 4), invalid=True))
    # b9: five returns in five days, each authorized within 30 minutes.
    for i in range(5):
        s0 = requested(
            f"rb9-{i + 1}",
            order_id=f"o-b9-{i + 1}",
            buyer_id="b9",
            seller_id="sA",
            created_at=at(6 + i),
            lines=[("SKU-3", 1, R.NO_LONGER_NEEDED)],
        )
        out += _lifecycle(s0, authorized(s0, at(6 + i) + timedelta(minutes=30)))

    # ---- seller sB
    out += [
        order_event(order("oB1", buyer_id="b1", seller_id="sB", delivered_at=at(1), skus={"SKU-9": 3})),
        order_event(order("oB2", buyer_id="b4", seller_id="sB", delivered_at=at(3), skus={"SKU-9": 1})),
        order_event(order("oB4", buyer_id="b5", seller_id="sB", delivered_at=at(0), skus={"SKU-8": 2}, currency="EUR")),
    ]
    s0 = requested(
        "rb1", order_id="oB1", buyer_id="b1", seller_id="sB", created_at=at(2), lines=[("SKU-9", 1, R.DEFECTIVE)]
    )
    out += _lifecycle(s0, authorized(s0, at(3)))
    # rb2 is requested an hour before the period ends and answered after it.
    s0 = requested(
        "rb2", order_id="oB2", buyer_id="b4", seller_id="sB", created_at=at(13, 23), lines=[("SKU-9", 1, R.DEFECTIVE)]
    )
    out += _lifecycle(s0, authorized(s0, at(15)))
    # rb3 is requested exactly when the period ends: not in it.
    out += _lifecycle(
        requested(
            "rb3", order_id="oB3", buyer_id="b4", seller_id="sB", created_at=at(14), lines=[("SKU-9", 1, R.DEFECTIVE)]
        )
    )
    s0 = requested(
        "rb4",
        order_id="oB4",
        buyer_id="b5",
        seller_id="sB",
        created_at=at(1),
        currency="EUR",
        lines=[("SKU-8", 1, R.DAMAGED_ON_ARRIVAL)],
    )
    s1 = authorized(s0, at(1, 1))
    s2 = received(s1, at(3))
    s3 = feedback(s2, at(5), resolved=True)
    out += _lifecycle(s0, s1, s2, s3)
    rf4 = refund(s2, issued_at=at(4), amount=800)
    out += [refund_event(rf4, "return.refunded"), refund_event(rf4, "refund.issued")]
    s0 = requested(
        "rb5", order_id="oB5", buyer_id="b6", seller_id="sB", created_at=at(9), lines=[("SKU-9", 2, R.ARRIVED_LATE)]
    )
    out += _lifecycle(s0, closed(s0, at(9, 3)))
    return out
