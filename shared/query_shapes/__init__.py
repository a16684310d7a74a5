"""Every filter the stores issue, the index that serves it, and whether it is on a hot path.

A query's shape is the set of its field paths, each with the operators applied to it (a bare
path is an equality), plus its sort: `{_id, version}`, `{order_id}`, `{outbox_pending, $or:
[...]}`. `$and` is flattened (a conjunction either way); `$or` keeps its branches. Map fields keyed
by an id (the refund ledger's `postage.<id>`) read as `<id>`.

The entries are kept per service in the modules beside this one (common.py holds those of the
shared modules every service runs; then returns.py, refunds.py, notifications.py, webhooks.py,
metrics.py and disputes.py), built with `model.shape()`. `SHAPES` joins them: it is the list
docs/design.md shows ("Query shapes and their indexes", rendered by `render_table`, checked by
tests/contract/test_docs.py), and the list the integration tests hold the services to: a command
listener on the services' MongoDB clients records every filter they send and fails the test when
its shape is not listed here for its collection.

Hot = on the path of an HTTP transition, an event handler, the outbox relay or the email
dispatcher; such a shape must be served without a scan on the embedded server (mongo-java-server
behind deploy/local/mongo-wire looks a filter up by index only by a plain `_id`, or when its keys
are exactly a unique index's; our launcher adds non-unique indexes, SecondaryIndex, which serve a
filter that constrains an index's leading key) and by an index on MongoDB. Listings, periodic
sweeps and purges are not hot, but have an index on both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shared.query_shapes import common, disputes, metrics, notifications, refunds, returns, webhooks
from shared.query_shapes.model import (
    BY_ID,
    EVERY_COLLECTION,
    ID_KEYED_MAPS,
    INDEXED,
    LISTING,
    OUTBOX_COLLECTIONS,
    SCAN,
    SERVICES,
    QueryShape,
)

__all__ = [
    "BY_ID",
    "EVERY_COLLECTION",
    "INDEXED",
    "LISTING",
    "OUTBOX_COLLECTIONS",
    "SCAN",
    "SERVICES",
    "SHAPES",
    "QueryShape",
    "command_filters",
    "filter_terms",
    "listed",
    "render_table",
    "render_terms",
]

# In this order in docs/design.md.
SHAPES: tuple[QueryShape, ...] = (
    *common.SHAPES,
    *returns.SHAPES,
    *refunds.SHAPES,
    *notifications.SHAPES,
    *webhooks.SHAPES,
    *metrics.SHAPES,
    *disputes.SHAPES,
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
