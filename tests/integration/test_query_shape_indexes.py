"""Every index shared/query_shapes/ names is created by the services' own index set-up."""

from __future__ import annotations

import re
import uuid
from typing import Any

from services.disputes.chargebacks.store import ChargebackStore
from services.disputes.orders import OrderBook
from services.disputes.store import ClaimsStore
from services.metrics.store import MetricsStore
from services.notifications.store import NotificationStore
from services.notifications.webhooks.store import WebhookStore
from services.refunds.gateways.ledger import LedgerGateway
from services.refunds.store import RefundStore
from services.refunds.store_credit.store import StoreCreditStore
from services.returns.store import ReturnsStore
from shared.clock import SystemClock
from shared.idempotency import IdempotencyStore
from shared.outbox import OutboxRelay
from shared.query_shapes import EVERY_COLLECTION, SHAPES


async def set_up(service: str, db: Any, bus_factory: Any) -> None:
    """What the service's app does to its database at start-up (its index set-up)."""
    outboxes: list[Any]
    if service == "returns":
        returns = ReturnsStore(db)
        await returns.ensure_indexes()
        outboxes = [returns.returns, returns.orders]
    elif service == "refunds":
        refunds = RefundStore(db)
        await refunds.ensure_indexes()
        await LedgerGateway(db["ledger_entries"], SystemClock()).ensure_indexes()
        credit = StoreCreditStore(db, SystemClock())
        await credit.ensure_indexes()
        outboxes = [refunds.refunds, credit.entries]
    elif service == "notifications":
        notifications = NotificationStore(db)
        await notifications.ensure_indexes()
        await WebhookStore(db).ensure_indexes()
        outboxes = [notifications.collection]
    elif service == "disputes":
        await OrderBook(db["order_facts"]).ensure_indexes()
        chargebacks = ChargebackStore(db)
        await chargebacks.ensure_indexes()
        claims = ClaimsStore(db)
        await claims.ensure_indexes()
        outboxes = [claims.claims, claims.feedback, chargebacks.chargebacks]
    else:
        metrics = MetricsStore(db)
        await metrics.ensure_indexes()
        outboxes = [metrics.buyers]
    await IdempotencyStore(db).ensure_indexes()
    bus = await bus_factory(service, inbox=db["inbox"])
    await bus.start()
    relay = OutboxRelay(bus, outboxes)
    await relay.start()
    await relay.stop()


async def test_every_named_index_exists(mongo_client: Any, bus_factory: Any) -> None:
    indexes: dict[str, set[str]] = {}  # collection -> index names, in any service's database
    for service in ("returns", "refunds", "notifications", "metrics", "disputes"):
        name = f"test_shapes_{service}_{uuid.uuid4().hex[:8]}"
        db = mongo_client[name]
        try:
            await set_up(service, db, bus_factory)
            for collection in await db.list_collection_names():
                indexes.setdefault(collection, set()).update(await db[collection].index_information())
        finally:
            await mongo_client.drop_database(name)
    missing = []
    for shape in SHAPES:
        named = set(re.findall(r"`([^`]+)`", shape.index)) - {"_id"}  # every collection has that one
        for collection in shape.collections:
            if collection == EVERY_COLLECTION:
                continue
            missing += [f"{collection}: {n} ({shape.filter_text})" for n in named - indexes.get(collection, set())]
    assert not missing, "indexes named in shared/query_shapes/ that no set-up creates:\n" + "\n".join(missing)
