"""Query shapes every service sends: the inbox, idempotency keys and the outbox relay (shared/)."""

from __future__ import annotations

from shared.query_shapes.model import (
    BY_ID,
    EVERY_COLLECTION,
    INDEXED,
    LEASE_DUE,
    LEASE_DUE_OR_OURS,
    OUTBOX_COLLECTIONS,
    QueryShape,
    shape,
)

SHAPES: tuple[QueryShape, ...] = (
    shape(
        EVERY_COLLECTION,
        "_id",
        "`_id`",
        BY_ID,
        True,
        "every read or write of one document by its id (the inbox's `_seen`, the outbox's `_release`, ...)",
    ),
    shape("inbox", "processed_at: $lt", "`processed_at_1`", INDEXED, False, "shared/bus.py: `purge_inbox` (hourly)"),
    shape("idempotency_keys", "_id, token", "`_id`", BY_ID, True, "shared/idempotency.py: `begin` (expired record)"),
    shape(
        "idempotency_keys",
        "_id, state, token",
        "`_id`",
        BY_ID,
        True,
        "shared/idempotency.py: `begin` (crashed holder), `complete`, `release`",
    ),
    shape(
        "idempotency_keys",
        "expires_at: $lte",
        "`expires_at_1`",
        INDEXED,
        False,
        "shared/idempotency.py: `purge_expired`",
    ),
    shape(
        OUTBOX_COLLECTIONS,
        f"outbox_pending, {LEASE_DUE}",
        "`outbox_pending_1`",
        f"{INDEXED} (at start-up and once per `OUTBOX_POLL_MS` (15 s) per collection, whatever the load: "
        "committed events are published directly, failed ones retried by `_id`)",
        False,
        "shared/outbox.py: `_sweep` (start-up, every poll interval, and after a wake that names no document)",
    ),
    shape(
        OUTBOX_COLLECTIONS,
        "outbox_pending",
        "`outbox_pending_1`",
        f"{INDEXED} (at most once per 10 s, when /metrics is scraped)",
        False,
        "shared/ops_metrics.py: `outbox_source` (`returns_platform_outbox_pending` and the oldest's age)",
    ),
    shape(
        OUTBOX_COLLECTIONS,
        f"_id, outbox_pending, {LEASE_DUE_OR_OURS}",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox.py: `_relay` (lease the document woken for, due for a retry, found by the sweep, or "
        "left with newer events under this relay's claim)",
    ),
    shape(
        OUTBOX_COLLECTIONS,
        "_id, outbox: $size, outbox.id: $all",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox_release.py: one release alone (empty the outbox after publishing what a commit handed over); "
        "shared/outbox.py: `_release` (the `_id` path's release goes the same way)",
    ),
    shape(
        OUTBOX_COLLECTIONS,
        "_id: $in",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox_release.py: releases written together (pull the published events)",
    ),
    shape(
        OUTBOX_COLLECTIONS,
        "_id: $in, outbox: $size",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox_release.py: releases written together (clear what is now empty)",
    ),
    shape(
        OUTBOX_COLLECTIONS,
        "_id: $in, outbox_pending",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox_release.py: releases written together (which still hold newer events)",
    ),
    shape(
        OUTBOX_COLLECTIONS,
        "_id, outbox: $size, outbox_lease_owner",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox.py: `_release` (let go of the document once the published events are pulled, if none is left)",
    ),
    shape(
        OUTBOX_COLLECTIONS,
        "_id, outbox_lease_owner",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox.py: `_failed` (the lease becomes the back-off)",
    ),
)
