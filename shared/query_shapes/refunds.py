"""Query shapes of the refunds service."""

from __future__ import annotations

from shared.query_shapes.model import BY_ID, CLAIMABLE, CURSOR, INDEXED, LISTING, NEWEST_FIRST, QueryShape, shape

SHAPES: tuple[QueryShape, ...] = (
    shape(
        "orders",
        "_id, order: $exists",
        "`_id`",
        BY_ID,
        True,
        "refunds `save_order` (the order's copy, kept once; its document may hold closed returns first)",
    ),
    shape(
        "refunds",
        "_id, pay_lease_until: $lte, status",
        "`_id`",
        BY_ID,
        True,
        "refunds `claim` (take the right to pay)",
    ),
    shape("refunds", "_id, status, version", "`_id`", BY_ID, True, "refunds `extend_lease`, `delete_unpaid`"),
    shape("refunds", "_id, version", "`_id`", BY_ID, True, "refunds `save`, `commit` (not claimable: once more)"),
    shape(
        "refunds",
        f"_id, version, {CLAIMABLE}",
        "`_id`",
        BY_ID,
        True,
        "refunds `commit` (`refund.issued`/`refund.failed`, claimed for this replica's outbox relay)",
    ),
    shape(
        "refunds",
        "due_at: $lte, status",
        "`status_1_due_at_1`",
        INDEXED,
        False,
        "refunds `overdue` (deadline job: when a deadline a replica knows of comes, and in its sweeps)",
    ),
    shape(
        "refunds",
        "pay_lease_until: $lte, status",
        "`status_1_pay_lease_until_1`",
        INDEXED,
        False,
        "refunds `stalled` (deadline job's sweep, at start then every `SWEEP_INTERVAL_S`: payments whose payer "
        "crashed)",
    ),
    shape(
        "refunds",
        "",
        "`return_id_1_created_at_1`, `order_id_1_created_at_1`, `buyer.id_1_created_at_1`, "
        "`seller.id_1_created_at_1`, `created_at_1` (others filtered on the walk)",
        LISTING,
        False,
        "refunds `page` (`GET /v1/refunds`)",
        optional=("return_id", "order_id", "buyer.id", "seller.id", "status", CURSOR),
        sort=NEWEST_FIRST,
    ),
    shape(
        "order_ledgers",
        "_id, came_back.<id>: $exists",
        "`_id`",
        BY_ID,
        True,
        "refunds `OrderLedgers.note_came_back` (once per return refund, when the order's shipping is not zero)",
    ),
    shape(
        "order_ledgers",
        "_id, available: $lte, postage.<id>: $exists",
        "`_id`",
        BY_ID,
        True,
        "refunds `OrderLedgers.count_postage`",
    ),
    shape(
        "order_ledgers",
        "_id, available: $gte, reservations.<id>: $exists, settled.<id>: $exists",
        "`_id`",
        BY_ID,
        True,
        "refunds `OrderLedgers.reserve`",
    ),
    shape(
        "order_ledgers",
        "_id, reservations.<id>",
        "`_id`",
        BY_ID,
        True,
        "refunds `OrderLedgers.release`, `settle`",
    ),
    shape("order_ledgers", "_id, settled.<id>: $exists", "`_id`", BY_ID, True, "refunds `OrderLedgers.settle`"),
    shape(
        "ledger_entries",
        "_id",
        "`_id`",
        BY_ID,
        True,
        "refunds `LedgerGateway.find` (rare: an agent's retry of a failed refund first checks that no "
        "round of keys paid, one read per round's key)",
    ),
    shape(
        "store_credit_entries",
        "slot",
        "`slot_1` (unique)",
        "unique key `{slot}`",
        True,
        "refunds `StoreCreditStore.head` (the buyer's next entry after the cached head: usually none)",
    ),
    shape(
        "store_credit_entries",
        "buyer_id",
        "`buyer_id_1_seq_1`",
        LISTING,
        False,
        "refunds `StoreCreditStore.page` (`GET /v1/store-credit/{buyer_id}/entries`, newest first by place "
        "in the buyer's chain)",
        optional=("$or: [{_id: $lt, seq}, {seq: $lt}]",),
        sort="-seq, -_id",
    ),
    shape(
        "store_credit_accounts",
        "_id, seq: $lt",
        "`_id`",
        BY_ID,
        True,
        "refunds `StoreCreditStore._advance` (cache a newer head; an upsert)",
    ),
)
