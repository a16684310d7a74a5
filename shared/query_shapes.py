"""Every filter the stores issue, the index that serves it, and whether it is on a hot path.

A query's shape is the set of its field paths, each with the operators applied to it (a bare
path is an equality), plus its sort: `{_id, version}`, `{order_id}`, `{outbox_pending, $or:
[...]}`. `$and` is flattened (a conjunction either way); `$or` keeps its branches. Map fields keyed
by an id (the refund ledger's `postage.<id>`) read as `<id>`.

`SHAPES` is the list docs/design.md shows ("Query shapes and their indexes", rendered by
`render_table`, checked by tests/contract/test_docs.py), and the list the integration tests hold
the services to: a command listener on the services' MongoDB clients records every filter they
send and fails the test when its shape is not listed here for its collection.

Hot = on the path of an HTTP transition, an event handler, the outbox relay or the email
dispatcher; such a shape must be served without a scan on the embedded server (mongo-java-server
behind deploy/local/mongo-wire looks a filter up by index only by a plain `_id`, or when its keys
are exactly a unique index's; our launcher adds non-unique indexes, SecondaryIndex, which serve a
filter that constrains an index's leading key) and by an index on MongoDB. Listings, periodic
sweeps and purges are not hot, but have an index on both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Embedded-server verdicts.
BY_ID = "`_id` lookup"
INDEXED = "secondary index"  # deploy/local/mongo-wire SecondaryIndex: the declared index, kept in memory
LISTING = f"{INDEXED} when filtered by a leading key of one; unfiltered, a walk of the collection in sort order"
SCAN = "scan"

EVERY_COLLECTION = "*"
SERVICES = ("returns", "refunds", "notifications", "metrics", "disputes")
OUTBOX_COLLECTIONS = (
    "returns",
    "orders",
    "refunds",
    "notifications",
    "buyers",
    "claims",
    "seller_feedback",
    "chargebacks",
    "store_credit_entries",
)
# Map fields whose keys are ids: `postage.rf_1` reads as `postage.<id>`.
ID_KEYED_MAPS: Mapping[str, tuple[str, ...]] = {
    "order_ledgers": ("postage", "reservations", "settled"),
    "order_facts": ("refunds", "returns"),
}

_CURSOR = "$or: [{_id: $lt, created_at}, {created_at: $lt}]"
_NEWEST_FIRST = "-created_at, -_id"
_LEASE_DUE = "$or: [{outbox_lease_until: $exists}, {outbox_lease_until: $lt}]"
# A commit with events claiming its document for the relay (shared/outbox.py `commit_events`).
_CLAIMABLE = "$or: [{outbox_lease_owner: $exists}, {outbox_lease_owner}, {outbox_lease_until: $lt}]"


@dataclass(frozen=True)
class QueryShape:
    collections: tuple[str, ...]
    terms: tuple[str, ...]  # every one is in the filter
    index: str  # what serves it on MongoDB
    embedded: str  # how the embedded server serves it: BY_ID, "unique key ...", INDEXED (...), or SCAN (...)
    hot: bool
    issued_by: str  # starts with the service that sends it, or names a shared module (every service)
    optional: tuple[str, ...] = ()  # any of these may be in the filter too (listings)
    sort: str = ""  # "-created_at, -_id": descending created_at, then _id

    @property
    def service(self) -> str | None:
        """The one service that sends it; None when every service does (shared modules)."""
        first = self.issued_by.split(" ", 1)[0]
        return first if first in SERVICES else None

    @property
    def filter_text(self) -> str:
        return "{" + ", ".join([*self.terms, *(f"[{term}]" for term in self.optional)]) + "}"

    def matches(self, terms: frozenset[str], sort: str) -> bool:
        required = set(self.terms)
        return sort == self.sort and required <= terms and terms <= required | set(self.optional)


def _shape(
    collections: str | tuple[str, ...],
    filter_terms: str,
    index: str,
    embedded: str,
    hot: bool,
    issued_by: str,
    *,
    optional: Iterable[str] = (),
    sort: str = "",
) -> QueryShape:
    names = (collections,) if isinstance(collections, str) else collections
    terms = tuple(t.strip() for t in _split(filter_terms))
    return QueryShape(names, terms, index, embedded, hot, issued_by, tuple(optional), sort)


def _split(text: str) -> list[str]:
    """Top-level comma-separated terms of "a, b: $lt, $or: [{c}, {d}]"."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


_RETURN_FILTERS = (
    *("order_id", "buyer.id", "seller.id", "status"),
    *("created_at: $gte", "created_at: $lt", "created_at: $gte $lt", _CURSOR),
)

SHAPES: tuple[QueryShape, ...] = (
    # ---- shared: every service's inbox, idempotency keys and outbox relay ----------------------
    _shape(
        EVERY_COLLECTION,
        "_id",
        "`_id`",
        BY_ID,
        True,
        "every read or write of one document by its id (the inbox's `_seen`, the outbox's `_release`, ...)",
    ),
    _shape("inbox", "processed_at: $lt", "`processed_at_1`", INDEXED, False, "shared/bus.py: `purge_inbox` (hourly)"),
    _shape("idempotency_keys", "_id, token", "`_id`", BY_ID, True, "shared/idempotency.py: `begin` (expired record)"),
    _shape(
        "idempotency_keys",
        "_id, state, token",
        "`_id`",
        BY_ID,
        True,
        "shared/idempotency.py: `begin` (crashed holder), `complete`, `release`",
    ),
    _shape(
        "idempotency_keys",
        "expires_at: $lte",
        "`expires_at_1`",
        INDEXED,
        False,
        "shared/idempotency.py: `purge_expired`",
    ),
    _shape(
        OUTBOX_COLLECTIONS,
        f"outbox_pending, {_LEASE_DUE}",
        "`outbox_pending_1`",
        f"{INDEXED} (at start-up and once per `OUTBOX_POLL_MS` (15 s) per collection, whatever the load: "
        "committed events are published directly, failed ones retried by `_id`)",
        False,
        "shared/outbox.py: `_sweep` (start-up, every poll interval, and after a wake that names no document)",
    ),
    _shape(
        OUTBOX_COLLECTIONS,
        "outbox_pending",
        "`outbox_pending_1`",
        f"{INDEXED} (at most once per 10 s, when /metrics is scraped)",
        False,
        "shared/ops_metrics.py: `outbox_source` (`returns_platform_outbox_pending` and the oldest's age)",
    ),
    _shape(
        OUTBOX_COLLECTIONS,
        f"_id, outbox_pending, {_LEASE_DUE}",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox.py: `_relay` (lease the document woken for, due for a retry, or found by the sweep)",
    ),
    _shape(
        OUTBOX_COLLECTIONS,
        "_id, outbox: $size, outbox.id: $all",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox_release.py: one release alone (empty the outbox after publishing what a commit handed over)",
    ),
    _shape(
        OUTBOX_COLLECTIONS,
        "_id: $in",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox_release.py: releases written together (pull the published events)",
    ),
    _shape(
        OUTBOX_COLLECTIONS,
        "_id: $in, outbox: $size",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox_release.py: releases written together (clear what is now empty)",
    ),
    _shape(
        OUTBOX_COLLECTIONS,
        "_id: $in, outbox_pending",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox_release.py: releases written together (which still hold newer events)",
    ),
    _shape(
        OUTBOX_COLLECTIONS,
        "_id, outbox: $size, outbox_lease_owner",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox.py: `_release` (empty the outbox)",
    ),
    _shape(
        OUTBOX_COLLECTIONS,
        "_id, outbox_lease_owner",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox.py: `_release`, `_failed` (drop or extend the lease)",
    ),
    # ---- returns ---------------------------------------------------------------------------------
    _shape("orders", "_id, snapshot_version", "`_id`", BY_ID, True, "returns `save_order` (changed snapshot)"),
    _shape(
        "orders",
        "_id, snapshot_digest: $ne",
        "`_id`",
        BY_ID,
        True,
        "returns `save_order` (`order.delivered`: upsert unless the same snapshot is stored)",
    ),
    _shape("buyer_flags", "_id, sequence: $lt", "`_id`", BY_ID, True, "returns `save_buyer_flag`"),
    _shape(
        "returns",
        "order_id, order_seq",
        "`order_id_1_order_seq_1` (unique)",
        "unique key `{order_id, order_seq}`",
        True,
        "returns `returns_of_order` (`POST /v1/returns`: the order's returns, slot by slot, up to the first free one)",
    ),
    _shape("returns", "_id, version", "`_id`", BY_ID, True, "returns `apply` (a transition without events)"),
    _shape(
        "returns",
        "_id, version, $or: [{outbox_lease_owner: $exists}, {outbox_lease_owner}, {outbox_lease_until: $lt}]",
        "`_id`",
        BY_ID,
        True,
        "returns `apply` (a transition with events, claimed for this replica's outbox relay)",
    ),
    _shape(
        "returns",
        "",
        "`buyer.id_1_created_at_-1`, `seller.id_1_created_at_-1`, `created_at_-1` (others filtered on the walk)",
        LISTING,
        False,
        "returns `list_returns` (`GET /v1/returns`)",
        optional=_RETURN_FILTERS,
        sort=_NEWEST_FIRST,
    ),
    _shape(
        "returns",
        "in_policy, marketplace: $in, reminded_at: $exists, response_due_at: $gt $lte, settlement, status",
        "`status_1_response_due_at_1`",
        INDEXED,
        False,
        "returns `due_for_reminder` (deadline job)",
        sort="+response_due_at",
    ),
    _shape(
        "returns",
        "in_policy, marketplace: $in, response_due_at: $lte, settlement, status",
        "`status_1_response_due_at_1`",
        INDEXED,
        False,
        "returns `past_response_deadline` (deadline job)",
        sort="+response_due_at",
    ),
    _shape(
        "returns",
        "authorization.returnless, marketplace: $in, settlement, ship_by: $lte, status",
        "`status_1_ship_by_1`",
        INDEXED,
        False,
        "returns `past_ship_by` (deadline job)",
        sort="+ship_by",
    ),
    _shape(
        "returns",
        "marketplace: $in, offer_expires_at: $lte",
        "`offer_expires_at_1` (sparse: only returns with an open keep-it offer)",
        INDEXED,
        False,
        "returns `offers_past_expiry` (deadline job: keep-it offers left unanswered)",
        sort="+offer_expires_at",
    ),
    # ---- refunds ---------------------------------------------------------------------------------
    _shape(
        "orders",
        "_id, order: $exists",
        "`_id`",
        BY_ID,
        True,
        "refunds `save_order` (the order's copy, kept once; its document may hold closed returns first)",
    ),
    _shape(
        "refunds",
        "_id, pay_lease_until: $lte, status",
        "`_id`",
        BY_ID,
        True,
        "refunds `claim` (take the right to pay)",
    ),
    _shape("refunds", "_id, status, version", "`_id`", BY_ID, True, "refunds `extend_lease`, `delete_unpaid`"),
    _shape("refunds", "_id, version", "`_id`", BY_ID, True, "refunds `save`, `commit` (not claimable: once more)"),
    _shape(
        "refunds",
        f"_id, version, {_CLAIMABLE}",
        "`_id`",
        BY_ID,
        True,
        "refunds `commit` (`refund.issued`/`refund.failed`, claimed for this replica's outbox relay)",
    ),
    _shape(
        "refunds",
        "due_at: $lte, status",
        "`status_1_due_at_1`",
        INDEXED,
        False,
        "refunds `overdue` (deadline job: when a deadline a replica knows of comes, and in its sweeps)",
    ),
    _shape(
        "refunds",
        "pay_lease_until: $lte, status",
        "`status_1_pay_lease_until_1`",
        INDEXED,
        False,
        "refunds `stalled` (deadline job's sweep, at start then every `SWEEP_INTERVAL_S`: payments whose payer "
        "crashed)",
    ),
    _shape(
        "refunds",
        "",
        "`return_id_1_created_at_1`, `order_id_1_created_at_1`, `buyer.id_1_created_at_1`, "
        "`seller.id_1_created_at_1`, `created_at_1` (others filtered on the walk)",
        LISTING,
        False,
        "refunds `page` (`GET /v1/refunds`)",
        optional=("return_id", "order_id", "buyer.id", "seller.id", "status", _CURSOR),
        sort=_NEWEST_FIRST,
    ),
    _shape(
        "order_ledgers",
        "_id, available: $lte, postage.<id>: $exists",
        "`_id`",
        BY_ID,
        True,
        "refunds `OrderLedgers.count_postage`",
    ),
    _shape(
        "order_ledgers",
        "_id, available: $gte, reservations.<id>: $exists, settled.<id>: $exists",
        "`_id`",
        BY_ID,
        True,
        "refunds `OrderLedgers.reserve`",
    ),
    _shape(
        "order_ledgers",
        "_id, reservations.<id>",
        "`_id`",
        BY_ID,
        True,
        "refunds `OrderLedgers.release`, `settle`",
    ),
    _shape("order_ledgers", "_id, settled.<id>: $exists", "`_id`", BY_ID, True, "refunds `OrderLedgers.settle`"),
    _shape(
        "ledger_entries",
        "_id",
        "`_id`",
        BY_ID,
        True,
        "refunds `LedgerGateway.find` (rare: an agent's retry of a failed refund first checks that no "
        "round of keys paid, one read per round's key)",
    ),
    _shape(
        "store_credit_entries",
        "slot",
        "`slot_1` (unique)",
        "unique key `{slot}`",
        True,
        "refunds `StoreCreditStore.head` (the buyer's next entry after the cached head: usually none)",
    ),
    _shape(
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
    _shape(
        "store_credit_accounts",
        "_id, seq: $lt",
        "`_id`",
        BY_ID,
        True,
        "refunds `StoreCreditStore._advance` (cache a newer head; an upsert)",
    ),
    # ---- notifications ---------------------------------------------------------------------------
    _shape(
        "return_versions",
        "_id",
        "`_id`",
        BY_ID,
        True,
        "notifications `note_version` (`$max` upsert, the event that answers a request: once per return), "
        "`superseded` (a `seller.response_due_soon` reminder: is it stale?)",
    ),
    _shape(
        "notifications",
        "claimed_until: $lt, next_attempt_at: $lte, status",
        "`status_1_next_attempt_at_1`",
        INDEXED,
        False,
        "notifications `claim` without an id (the dispatcher's poll: a crashed sender's leftovers, another "
        "replica's retries; at most once per `DISPATCH_POLL_MS` while nothing is due)",
        sort="+next_attempt_at",
    ),
    _shape(
        "notifications",
        "_id, claimed_until: $lt, next_attempt_at: $lte, status",
        "`_id`",
        BY_ID,
        True,
        "notifications `claim` by id (a retry this process scheduled, a resend)",
    ),
    _shape("notifications", "_id, claim", "`_id`", BY_ID, True, "notifications `renew`, `settle`"),
    _shape(
        "notifications",
        f"_id, claim, {_CLAIMABLE}",
        "`_id`",
        BY_ID,
        True,
        "notifications `settle` (an outcome with its `notification.*`, claimed for this replica's outbox relay; "
        "alone, or with others settling at once in one bulk update: shared/outbox_commit.py)",
    ),
    _shape(
        "notifications",
        "_id: $in, outbox.id: $in",
        "`_id`",
        BY_ID,
        True,
        "shared/outbox_commit.py: outcomes written together, when not all matched (which hold their new events)",
    ),
    _shape("notifications", "_id, status: $in", "`_id`", BY_ID, False, "notifications `resend` (agent)"),
    _shape(
        "notifications",
        "",
        "`return_id_1_created_at_-1`, `recipient_id_1_created_at_-1`, `created_at_-1` (others filtered on the walk)",
        LISTING,
        False,
        "notifications `page` (`GET /v1/notifications`)",
        optional=("return_id", "recipient_id", "recipient_role", "status", _CURSOR),
        sort=_NEWEST_FIRST,
    ),
    # ---- notifications: webhooks (services/notifications/webhooks) ---------------------------------
    _shape(
        "webhook_endpoints",
        "_id",
        "`_id`",
        BY_ID,
        True,
        "notifications webhooks `endpoint` (each delivery attempt), `update_endpoint`, `delete_endpoint`",
    ),
    _shape("webhook_endpoints", "_id, status", "`_id`", BY_ID, False, "notifications webhooks `disable`"),
    _shape(
        "webhook_endpoints",
        "_id, secrets_rev",
        "`_id`",
        BY_ID,
        False,
        "notifications webhooks `replace_secrets` (`POST /v1/webhooks/{id}/secret/rotate`, compare-and-set)",
    ),
    _shape(
        "webhook_endpoints",
        "event_types",
        "`event_types_1`",
        INDEXED,
        True,
        "notifications webhooks `subscribed` (the webhooks consumer, per event of a type some endpoint subscribes to)",
    ),
    _shape(
        "webhook_endpoints",
        "",
        "none: every endpoint is read (a handful)",
        SCAN,
        False,
        "notifications webhooks `subscribed_types` (the bindings' reconcile: start-up and every WEBHOOKS_RECONCILE_S)",
    ),
    _shape(
        "webhook_endpoints",
        "",
        "`created_at_-1`",
        LISTING,
        False,
        "notifications webhooks `page_endpoints` (`GET /v1/webhooks`)",
        optional=(_CURSOR,),
        sort=_NEWEST_FIRST,
    ),
    _shape(
        "webhook_deliveries",
        "_id, claimed_until: $lt, next_attempt_at: $lte, status",
        "`_id`",
        BY_ID,
        True,
        "notifications webhooks `claim` by id (a new delivery, a retry this process scheduled, a replay)",
    ),
    _shape(
        "webhook_deliveries",
        "claimed_until: $lt, next_attempt_at: $lte, status",
        "`status_1_next_attempt_at_1`",
        INDEXED,
        False,
        "notifications webhooks `claim` without an id (the delivery job's poll, every WEBHOOKS_POLL_MS)",
        sort="+next_attempt_at",
    ),
    _shape("webhook_deliveries", "_id, claim", "`_id`", BY_ID, True, "notifications webhooks `settle`"),
    _shape(
        "webhook_deliveries",
        "_id",
        "`_id`",
        BY_ID,
        False,
        "notifications webhooks `delivery`, `requeue_one` (replay), `note_attempt` (a claim taken over)",
    ),
    _shape(
        "webhook_deliveries",
        "event_id",
        "`event_id_1`",
        INDEXED,
        False,
        "notifications webhooks `any_delivery_of` (replay of an event by id to an endpoint that never had it)",
    ),
    _shape(
        "webhook_deliveries",
        "endpoint_id",
        "`endpoint_id_1_created_at_-1`",
        INDEXED,
        False,
        "notifications webhooks `delete_endpoint` (its delivery log goes with it)",
    ),
    _shape(
        "webhook_deliveries",
        "endpoint_id",
        "`endpoint_id_1_created_at_-1`",
        INDEXED,
        False,
        "notifications webhooks `page_deliveries` (`GET /v1/webhooks/{id}/deliveries`)",
        optional=(_CURSOR,),
        sort=_NEWEST_FIRST,
    ),
    _shape(
        "webhook_deliveries",
        "endpoint_id, event_time: $gte $lt",
        "`endpoint_id_1_event_time_1`",
        INDEXED,
        False,
        "notifications webhooks `requeue_range` (`POST /v1/webhooks/{id}/replay` with `since`, `until`)",
    ),
    # ---- metrics ---------------------------------------------------------------------------------
    _shape(
        ("return_facts", "refund_facts", "claim_facts", "chargeback_facts", "feedback_facts"),
        "_id, version: $lte",
        "`_id`",
        BY_ID,
        True,
        "metrics `record_return`, `record_refund`, `record_claim`, `record_chargeback`, `record_feedback` (one "
        "upsert per event, an equal version a no-op; on a duplicate key, once more without)",
    ),
    _shape(
        ("delivery_facts", "expired_order_facts"),
        "_id, sequence: $lt",
        "`_id`",
        BY_ID,
        True,
        "metrics `record_delivery`, `record_expired` (the same upsert, by the order system's sequence)",
    ),
    _shape(
        "notification_facts", "_id, at: $lt", "`_id`", BY_ID, True, "metrics `record_notification` (the same upsert)"
    ),
    _shape(
        "return_facts",
        "_id, version: $lt",
        "`_id`",
        BY_ID,
        True,
        "metrics `record_return` when several are written at once (shared/upserts.py: the version compared "
        "strictly; one that collides is decided alone by the `$lte` upsert)",
    ),
    _shape(
        "buyers",
        "_id, revision",
        "`_id`",
        BY_ID,
        True,
        "metrics `settle_flag` (`return.created`, `order.delivered`, the flag review: the buyer's window "
        "of recent returns and deliveries, standing and flag in one write, read by `_id` first)",
    ),
    _shape(
        "buyers",
        "_id, revision: $exists",
        "`_id`",
        BY_ID,
        True,
        "metrics `settle_flag` (the first write of a buyer document from before windows were kept)",
    ),
    _shape(
        "buyers",
        f"_id, revision, {_CLAIMABLE}",
        "`_id`",
        BY_ID,
        True,
        "metrics `settle_flag` (a flag that flips, with its `buyer.*`, claimed for this replica's outbox relay)",
    ),
    _shape(
        "buyers",
        f"_id, revision: $exists, {_CLAIMABLE}",
        "`_id`",
        BY_ID,
        True,
        "metrics `settle_flag` (the same, on a buyer document from before windows were kept)",
    ),
    _shape(
        "return_facts",
        "buyer_id, created_at: $gte",
        "`buyer_id_1_created_at_1`",
        INDEXED,
        False,
        "metrics `buyer_facts` (seeds a buyer's window: the rebuild, and once per buyer document from before "
        "windows were kept)",
    ),
    _shape(
        "delivery_facts",
        "buyer_id, delivered_at: $gte",
        "`buyer_id_1_delivered_at_1`",
        INDEXED,
        False,
        "metrics `buyer_facts` (seeds a buyer's window: the rebuild, and once per buyer document from before "
        "windows were kept)",
    ),
    _shape(
        "notification_facts",
        "at: $gte $lt",
        "`at_1`",
        INDEXED,
        False,
        "metrics `email_outcomes` (reports)",
    ),
    _shape(
        "return_facts",
        "created_at: $lt, last_event_at: $gte",
        "`last_event_at_1`; with a seller `seller_id_1_created_at_1`",
        INDEXED,
        False,
        "metrics `returns_touching` (reports)",
        optional=("seller_id",),
    ),
    _shape(
        "refund_facts",
        "issued_at: $gte $lt",
        "`issued_at_1`; with a seller `seller_id_1_issued_at_1`",
        INDEXED,
        False,
        "metrics `refunds_for` (reports)",
        optional=("seller_id",),
    ),
    _shape("refund_facts", "return_id: $in", "`return_id_1`", INDEXED, False, "metrics `refunds_for` (reports)"),
    _shape(
        "delivery_facts",
        "seller_id, delivered_at: $gte $lt",
        "`seller_id_1_delivered_at_1`",
        INDEXED,
        False,
        "metrics `deliveries_in` (reports)",
    ),
    _shape(
        "refund_facts",
        "order_id: $in",
        "`order_id_1`",
        INDEXED,
        False,
        "metrics `refunds_of_orders` (order defects: the seller rating's refunded orders)",
    ),
    _shape(
        ("claim_facts", "chargeback_facts", "feedback_facts"),
        "order_id: $in",
        "`order_id_1`",
        INDEXED,
        False,
        "metrics `DisputeFacts.of_orders` (order defects: the defects of the seller's orders delivered in the window)",
    ),
    _shape(
        "expired_order_facts",
        "seller_id, expired_at: $gte $lt",
        "`seller_id_1_expired_at_1`",
        INDEXED,
        False,
        "metrics `DisputeFacts.expired_of` (order defects: the seller's orders expired unshipped in the window)",
    ),
    _shape(
        ("claim_facts", "chargeback_facts", "feedback_facts", "expired_order_facts"),
        "first_at: $lt, last_event_at: $gte",
        "`last_event_at_1`",
        INDEXED,
        False,
        "metrics `DisputeFacts.touching` (the overview's dispute totals)",
    ),
    _shape(
        ("return_facts", "delivery_facts", "buyers"),
        "",
        "none: reads every document, by design",
        SCAN,
        False,
        "metrics `buyers_with_facts` (re-assess every buyer: an operator's rebuild)",
    ),
    _shape("buyers", "flagged", "`flagged_1`", INDEXED, False, "metrics `flagged_buyers` (reports, a count)"),
    _shape(
        "store_credit_facts",
        "_id, at: $lte",
        "`_id`",
        BY_ID,
        True,
        "metrics `StoreCreditFacts.record` (`store_credit.*`: one upsert per entry, a copy a no-op)",
    ),
    _shape(
        "store_credit_facts",
        "at: $gte $lt",
        "`at_1`; with a seller `seller_id_1_at_1`",
        INDEXED,
        False,
        "metrics `StoreCreditFacts.in_period` (reports: store credit granted and spent)",
        optional=("seller_id",),
    ),
    _shape(
        "buyers",
        "review_at: $lt",
        "`review_at_1`",
        INDEXED,
        False,
        "metrics `buyers_due_for_review` (the flag review, every `FLAG_SWEEP_INTERVAL_S`: buyers whose oldest "
        "counted return or delivery has left the window since, each then settled by `_id`)",
    ),
    # ---- disputes --------------------------------------------------------------------------------
    _shape("order_facts", "_id, order: $exists", "`_id`", BY_ID, True, "disputes `OrderBook.save_order`"),
    _shape("order_facts", "_id, refunds.<id>: $exists", "`_id`", BY_ID, True, "disputes `OrderBook.note_refund`"),
    _shape(
        "order_facts",
        "_id, $or: [{returns.<id>: $exists}, {returns.<id>: $lt}]",
        "`_id`",
        BY_ID,
        True,
        "disputes `OrderBook.note_return` (a newer version of one of the order's returns)",
    ),
    _shape(
        "order_facts",
        "payment_reference",
        "`payment_reference_1`",
        INDEXED,
        True,
        "disputes `OrderBook.by_payment` (a chargeback finds its order)",
    ),
    _shape(
        "claims",
        "order_id, order_seq",
        "`order_id_1_order_seq_1` (unique)",
        "unique key `{order_id, order_seq}`",
        True,
        "disputes `claims_of_order` (`POST /v1/claims`: the order's claims, slot by slot, up to the first free one)",
    ),
    _shape("claims", "_id, version", "`_id`", BY_ID, True, "disputes `commit_claim` (not claimable: once more)"),
    _shape(
        "claims",
        f"_id, version, {_CLAIMABLE}",
        "`_id`",
        BY_ID,
        True,
        "disputes `commit_claim` (a transition with its `claim.*`, claimed for this replica's outbox relay)",
    ),
    _shape(
        "claims",
        "",
        "`order_id_1_order_seq_1`, `buyer.id_1_created_at_-1`, `seller.id_1_created_at_-1`, "
        "`status_1_respond_by_1`, `created_at_-1` (others filtered on the walk)",
        LISTING,
        False,
        "disputes `list_claims` (`GET /v1/claims`)",
        optional=("order_id", "buyer.id", "seller.id", "status", _CURSOR),
        sort=_NEWEST_FIRST,
    ),
    _shape(
        "claims",
        "reminded, respond_by: $gt $lte, status",
        "`status_1_respond_by_1` (marketplace filtered on the walk)",
        INDEXED,
        False,
        "disputes `due_for_reminder` (claim deadline job; by marketplace when their reminder leads differ)",
        optional=("marketplace: $in", "marketplace: $nin"),
        sort="+respond_by",
    ),
    _shape(
        "claims",
        "respond_by: $lte, status",
        "`status_1_respond_by_1`",
        INDEXED,
        False,
        "disputes `past_deadline` (claim deadline job: grant unanswered claims)",
        sort="+respond_by",
    ),
    _shape(
        "seller_feedback",
        "order_id",
        "`order_id_1` (unique)",
        "unique key `{order_id}`",
        True,
        "disputes `feedback_of_order` (`POST /v1/feedback` refused as a second one: was it this request's?)",
    ),
    _shape(
        "seller_feedback", "_id, version", "`_id`", BY_ID, True, "disputes `commit_feedback` (not claimable: once more)"
    ),
    _shape(
        "seller_feedback",
        f"_id, version, {_CLAIMABLE}",
        "`_id`",
        BY_ID,
        True,
        "disputes `commit_feedback` (`feedback.removed`, claimed for this replica's outbox relay)",
    ),
    _shape(
        "seller_feedback",
        "",
        "`order_id_1`, `seller_id_1_created_at_-1`, `buyer_id_1_created_at_-1`, `created_at_-1` "
        "(others filtered on the walk)",
        LISTING,
        False,
        "disputes `list_feedback` (`GET /v1/feedback`)",
        optional=("order_id", "buyer_id", "seller_id", _CURSOR),
        sort=_NEWEST_FIRST,
    ),
    _shape(
        "stripe_deliveries",
        "_id, signed_at: $ne",
        "`_id`",
        BY_ID,
        True,
        "disputes `ChargebackStore.note_delivery` (a Stripe webhook delivery: upsert unless this signature time "
        "was seen, an exact replay)",
    ),
    _shape(
        "stripe_deliveries",
        "received_at: $lt",
        "`received_at_1`",
        INDEXED,
        False,
        "disputes `ChargebackStore.forget_deliveries` (the evidence retry job: deliveries older than 7 days)",
    ),
    _shape(
        "chargebacks",
        "_id, version",
        "`_id`",
        BY_ID,
        True,
        "disputes `ChargebackStore.commit` (`charge.dispute.updated`: no event; a claiming commit once more, "
        "unclaimed)",
    ),
    _shape(
        "chargebacks",
        f"_id, version, {_CLAIMABLE}",
        "`_id`",
        BY_ID,
        True,
        "disputes `ChargebackStore.commit` (`chargeback.won`/`lost`, claimed for this replica's outbox relay)",
    ),
    _shape(
        "chargebacks",
        "_id, version, submission.key",
        "`_id`",
        BY_ID,
        True,
        "disputes `ChargebackStore.commit` (the gateway took the evidence: not claimable, once more)",
    ),
    _shape(
        "chargebacks",
        f"_id, version, submission.key, {_CLAIMABLE}",
        "`_id`",
        BY_ID,
        True,
        "disputes `ChargebackStore.commit` (`chargeback.evidence_submitted`, claimed for this replica's outbox relay)",
    ),
    _shape(
        "chargebacks",
        "_id, version, submission: $exists",
        "`_id`",
        BY_ID,
        True,
        "disputes `ChargebackStore.record_submission` (evidence recorded before the gateway is called)",
    ),
    _shape(
        "chargebacks",
        "_id, submission.key",
        "`_id`",
        BY_ID,
        True,
        "disputes `ChargebackStore.drop_submission` (the gateway refused the evidence)",
    ),
    _shape(
        "chargebacks",
        "_id, submission.key, submission.lease_until: $lte",
        "`_id`",
        BY_ID,
        False,
        "disputes `ChargebackStore.lease_submission` (the retry job takes over a stalled submission)",
    ),
    _shape(
        "chargebacks",
        "status, submission.lease_until: $lte",
        "`status_1_submission.lease_until_1`",
        INDEXED,
        False,
        "disputes `ChargebackStore.stalled_submissions` (the evidence retry job, every `JOB_INTERVAL_S`)",
    ),
    _shape(
        "chargebacks",
        "",
        "`seller.id_1_created_at_-1`, `order_id_1_created_at_-1`, `created_at_-1` (others filtered on the walk)",
        LISTING,
        False,
        "disputes `ChargebackStore.page` (`GET /v1/chargebacks`)",
        optional=("order_id", "seller.id", "status", "category", _CURSOR),
        sort=_NEWEST_FIRST,
    ),
)


# ---- shapes of real commands ---------------------------------------------------------------------


def _path(collection: str, key: str) -> str:
    head, _, rest = key.partition(".")
    if rest and head in ID_KEYED_MAPS.get(collection, ()):
        return f"{head}.<id>"
    return key


def filter_terms(collection: str, query: Mapping[str, Any]) -> frozenset[str]:
    """The shape of a filter as its set of terms: `version`, `version: $lt`, `$or: [{..}, {..}]`."""
    terms: set[str] = set()
    for key, value in query.items():
        if key == "$and":
            for part in value:
                terms |= filter_terms(collection, part)
        elif key in ("$or", "$nor"):
            branches = sorted({render_terms(filter_terms(collection, part)) for part in value})
            terms.add(f"{key}: [{', '.join(branches)}]")
        elif isinstance(value, Mapping) and value and all(str(op).startswith("$") for op in value):
            terms.add(f"{_path(collection, key)}: {' '.join(sorted(value))}")
        else:
            terms.add(_path(collection, key))
    return frozenset(terms)


def render_terms(terms: Iterable[str]) -> str:
    return "{" + ", ".join(sorted(terms)) + "}"


def sort_text(sort: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{'-' if direction == -1 else '+'}{field}" for field, direction in (sort or {}).items())


def command_filters(command: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(collection, filter, sort) of every filter a command sends; none for inserts and the rest."""
    name = next(iter(command))
    target = command[name]
    if name == "find":
        return [(target, command.get("filter") or {}, sort_text(command.get("sort")))]
    if name == "findAndModify":
        return [(target, command.get("query") or {}, sort_text(command.get("sort")))]
    if name in ("count", "distinct"):
        return [(target, command.get("query") or {}, "")]
    if name == "update":
        return [(target, update.get("q") or {}, "") for update in command.get("updates", [])]
    if name == "delete":
        return [(target, delete.get("q") or {}, "") for delete in command.get("deletes", [])]
    if name == "aggregate":
        return [(target, stage["$match"], "") for stage in command.get("pipeline", []) if "$match" in stage]
    return []


def listed(collection: str, terms: frozenset[str], sort: str, service: str | None = None) -> QueryShape | None:
    """The entry of SHAPES that allows this filter on this collection (of this service), if any."""
    for shape in SHAPES:
        if service is not None and shape.service not in (None, service):
            continue
        if (collection in shape.collections or EVERY_COLLECTION in shape.collections) and shape.matches(terms, sort):
            return shape
    return None


# ---- the table in docs/design.md -----------------------------------------------------------------


def render_table() -> str:
    rows = [
        "| collection | filter | sort | hot | MongoDB index | embedded server | issued by |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape in SHAPES:
        cells = (
            "every collection"
            if shape.collections == (EVERY_COLLECTION,)
            else ", ".join(f"`{name}`" for name in shape.collections),
            f"`{shape.filter_text}`",
            f"`{shape.sort}`" if shape.sort else "",
            "hot" if shape.hot else "",
            shape.index,
            shape.embedded,
            shape.issued_by,
        )
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"
