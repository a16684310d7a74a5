"""Query shapes of the notifications service (emails)."""

from __future__ import annotations

from shared.query_shapes.model import BY_ID, CLAIMABLE, CURSOR, INDEXED, LISTING, NEWEST_FIRST, QueryShape, shape

SHAPES: tuple[QueryShape, ...] = (
    shape(
        "return_versions",
        "_id",
        "`_id`",
        BY_ID,
        True,
        "notifications `note_version` (`$max` upsert, the event that answers a request: once per return), "
        "`superseded` (a `seller.response_due_soon` reminder: is it stale?)",
    ),
    shape(
        "notifications",
        "claimed_until: $lt, next_attempt_at: $lte, status",
        "`status_1_next_attempt_at_1`",
        INDEXED,
        False,
        "notifications `claim` without an id (the dispatcher's poll: a crashed sender's leftovers, another "
        "replica's retries; at most once per `DISPATCH_POLL_MS` while nothing is due)",
        sort="+next_attempt_at",
    ),
    shape(
        "notifications",
        "_id, claimed_until: $lt, next_attempt_at: $lte, status",
        "`_id`",
        BY_ID,
        True,
        "notifications `claim` by id (a retry this process scheduled, a resend)",
    ),
    shape("notifications", "_id, claim", "`_id`", BY_ID, True, "notifications `renew`, `settle`"),
    shape(
        "notifications",
        f"_id, claim, {CLAIMABLE}",
        "`_id`",
        BY_ID,
        True,
        "notifications `settle` (an outcome with its `notification.*`, claimed for this replica's outbox relay; "
        "alone, or with others settling at once in one bulk update: shared/outbox_commit.py)",
    ),
    shape(
        "notifications",
        "_id: $in, outbox.id: $in",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox_commit.py: outcomes written together, when not all matched (which hold their new events)",
    ),
    shape("notifications", "_id, status: $in", "`_id`", BY_ID, False, "notifications `resend` (agent)"),
    shape(
        "notifications",
        "",
        "`return_id_1_created_at_-1`, `recipient_id_1_created_at_-1`, `created_at_-1` (others filtered on the walk)",
        LISTING,
        False,
        "notifications `page` (`GET /v1/notifications`)",
        optional=("return_id", "recipient_id", "recipient_role", "status", CURSOR),
        sort=NEWEST_FIRST,
    ),
)
