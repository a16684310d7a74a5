"""What a query shape is, the verdicts on how the embedded server serves one, and `shape()`, which
the per-service lists (returns.py, refunds.py, ...) build their entries with."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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
    "order_ledgers": ("came_back", "postage", "reservations", "settled"),
    "order_facts": ("refunds", "returns"),
}

CURSOR = "$or: [{_id: $lt, created_at}, {created_at: $lt}]"
NEWEST_FIRST = "-created_at, -_id"
LEASE_DUE = "$or: [{outbox_lease_until: $exists}, {outbox_lease_until: $lt}]"
# The outbox relay's `_id` path: a document no one holds, or held by this relay.
LEASE_DUE_OR_OURS = "$or: [{outbox_lease_owner}, {outbox_lease_until: $exists}, {outbox_lease_until: $lt}]"
# A commit with events claiming its document for the relay (shared/outbox_writes.py `commit_events`).
CLAIMABLE = "$or: [{outbox_lease_owner: $exists}, {outbox_lease_owner}, {outbox_lease_until: $lt}]"


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


def shape(
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
