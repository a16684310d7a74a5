"""Query shapes of the returns service."""

from __future__ import annotations

from shared.query_shapes.model import BY_ID, CURSOR, INDEXED, LISTING, NEWEST_FIRST, QueryShape, shape

RETURN_FILTERS = (
    *("order_id", "buyer.id", "seller.id", "status"),
    *("created_at: $gte", "created_at: $lt", "created_at: $gte $lt", CURSOR),
)

SHAPES: tuple[QueryShape, ...] = (
    shape("orders", "_id, snapshot_version", "`_id`", BY_ID, True, "returns `save_order` (changed snapshot)"),
    shape(
        "orders",
        "_id, snapshot_digest: $ne, $or: [{upstream_sequence: $exists}, {upstream_sequence: $lt}]",
        "`_id`",
        BY_ID,
        True,
        "returns `save_order` (`order.delivered`: upsert unless the same snapshot or a newer one is stored)",
    ),
    shape("buyer_flags", "_id, sequence: $lt", "`_id`", BY_ID, True, "returns `save_buyer_flag`"),
    shape(
        "returns",
        "order_id, order_seq",
        "`order_id_1_order_seq_1` (unique)",
        "unique key `{order_id, order_seq}`",
        True,
        "returns `returns_of_order` (`POST /v1/returns`: the order's returns, slot by slot, up to the first free one)",
    ),
    shape("returns", "_id, version", "`_id`", BY_ID, True, "returns `apply` (a transition without events)"),
    shape(
        "returns",
        "_id, version, $or: [{outbox_lease_owner: $exists}, {outbox_lease_owner}, {outbox_lease_until: $lt}]",
        "`_id`",
        BY_ID,
        True,
        "returns `apply` (a transition with events, claimed for this replica's outbox relay)",
    ),
    shape(
        "returns",
        "",
        "`buyer.id_1_created_at_-1`, `seller.id_1_created_at_-1`, `created_at_-1` (others filtered on the walk)",
        LISTING,
        False,
        "returns `list_returns` (`GET /v1/returns`)",
        optional=RETURN_FILTERS,
        sort=NEWEST_FIRST,
    ),
    shape(
        "returns",
        "in_policy, marketplace: $in, reminded_at: $exists, response_due_at: $gt $lte, settlement, status",
        "`status_1_response_due_at_1`",
        INDEXED,
        False,
        "returns `due_for_reminder` (deadline job)",
        sort="+response_due_at",
    ),
    shape(
        "returns",
        "in_policy, marketplace: $in, response_due_at: $lte, settlement, status",
        "`status_1_response_due_at_1`",
        INDEXED,
        False,
        "returns `past_response_deadline` (deadline job)",
        sort="+response_due_at",
    ),
    shape(
        "returns",
        "authorization.returnless, marketplace: $in, settlement, ship_by: $lte, status",
        "`status_1_ship_by_1`",
        INDEXED,
        False,
        "returns `past_ship_by` (deadline job)",
        sort="+ship_by",
    ),
    shape(
        "returns",
        "marketplace: $in, offer_expires_at: $lte",
        "`offer_expires_at_1` (sparse: only returns with an open keep-it offer)",
        INDEXED,
        False,
        "returns `offers_past_expiry` (deadline job: keep-it offers left unanswered)",
        sort="+offer_expires_at",
    ),
)
