"""Store credit in the refunds database: each buyer's chain of entries, and a cached head.

Only one write decides anything: inserting an entry. Its `_id` is the movement's own id
(entries.grant_id / debit_id: exactly once per refund, per buyer and Idempotency-Key) and its
`slot` ("<seq>:<buyer>", a unique index) is its place in the buyer's chain, computed from the
balances entry seq-1 left. So two debits racing from the same balance cannot both land: the
second insert finds the slot taken, reads the new head and is judged again (never below zero).
The entry carries its event in its outbox (shared/outbox_writes.py), inserted in the same write, so an
applied entry is announced, and an entry never written announces nothing.

`store_credit_accounts` (`_id` = buyer) caches the newest head {seq, balances}; it is written after
the entry and may lag (a crash in between, or a slower writer): every read of a head walks
forward by `slot` (unique-key lookups, usually one miss) and repairs it. No transactions are needed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from motor.motor_asyncio import AsyncIOMotorDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from services.refunds.store_credit import entries
from shared.clock import Clock
from shared.http import ServiceUnavailable
from shared.outbox import OutboxRelay
from shared.outbox_writes import OUTBOX, outbox_fields
from shared.pagination import Page, make_page, page_filter, page_sort
from shared.resolution_models import StoreCreditAccount, StoreCreditEntry

ENTRIES = "store_credit_entries"
ACCOUNTS = "store_credit_accounts"
# Each round loses only to an entry that did land (lock-free); this many in a row is an outage.
ROUNDS = 100

log = logging.getLogger(__name__)


class StoreCreditBusy(ServiceUnavailable):
    title, slug = "Store credit busy", "store-credit-busy"


def slot(seq: int, buyer_id: str) -> str:
    """The unique key of a buyer's seq-th entry (the sequence first: no buyer id can fake one)."""
    return f"{seq}:{buyer_id}"


def _entry(doc: Mapping[str, Any]) -> StoreCreditEntry:
    return StoreCreditEntry.model_validate(doc)


class StoreCreditStore:
    def __init__(self, db: AsyncIOMotorDatabase, clock: Clock) -> None:
        self.clock = clock  # what dates new entries (the API's debits)
        self.entries = db[ENTRIES]
        self.accounts = db[ACCOUNTS]
        # The relay that publishes the entries' events (the wiring sets it): an insert is claimed
        # for it and handed over at once. Unset: the relay's sweep finds them.
        self.outbox_relay: OutboxRelay | None = None

    async def ensure_indexes(self) -> None:
        await self.entries.create_index("slot", unique=True)
        await self.entries.create_index([("buyer_id", 1), ("seq", 1)])

    # ---- reads ------------------------------------------------------------------------------

    async def get(self, entry_id: str) -> StoreCreditEntry | None:
        doc = await self.entries.find_one({"_id": entry_id})
        return None if doc is None else _entry(doc)

    async def head(self, buyer_id: str) -> tuple[int, dict[str, int]]:
        """The buyer's newest entry's seq and the balances it left ((0, {}) before any)."""
        doc = await self.accounts.find_one({"_id": buyer_id})
        cached = seq = 0 if doc is None else int(doc["seq"])
        balances: dict[str, int] = {} if doc is None else dict(doc["balances"])
        while newer := await self.entries.find_one({"slot": slot(seq + 1, buyer_id)}, {"seq": 1, "balances": 1}):
            seq, balances = int(newer["seq"]), dict(newer["balances"])
        if seq != cached:
            await self._advance(buyer_id, seq, balances)
        return seq, balances

    async def account(self, buyer_id: str) -> StoreCreditAccount:
        _, balances = await self.head(buyer_id)
        return StoreCreditAccount(buyer_id=buyer_id, balances=entries.positive_balances(balances))

    async def page(self, buyer_id: str, cursor: str | None, limit: int) -> Page[StoreCreditEntry]:
        """Newest first by place in the chain (entries of one moment still come in their order)."""
        query = {"buyer_id": buyer_id, **page_filter(cursor, "seq")}
        docs = [doc async for doc in self.entries.find(query).sort(page_sort("seq")).limit(limit + 1)]
        return make_page(docs, limit, _entry, sort_field="seq")

    # ---- the one deciding write -------------------------------------------------------------

    async def apply(self, entry: StoreCreditEntry) -> tuple[StoreCreditEntry, bool]:
        """Apply the entry once: (the entry as applied, True), or (the one applied before under
        its id, False). A debit above the balance raises entries.BalanceExceeded; a replayed debit
        asking for something else, IdempotencyKeyReused."""
        for _ in range(ROUNDS):
            found = await self.get(entry.entry_id)
            if found is not None:
                entries.check_replay(found, entry)
                return found, False
            seq, balances = await self.head(entry.buyer_id)
            applied, after = entries.apply(entry, balances)
            if await self._insert(applied, seq + 1, after):
                await self._advance(entry.buyer_id, seq + 1, after)
                return applied, True
            # The id (a concurrent retry: found next round) or the slot (another entry) was taken.
        raise StoreCreditBusy("Store credit is too busy for this buyer right now; retry.", headers={"Retry-After": "1"})

    async def _insert(self, entry: StoreCreditEntry, seq: int, balances: dict[str, int]) -> bool:
        relay = self.outbox_relay
        doc = {
            "_id": entry.entry_id,
            **entry.model_dump(mode="json"),
            "created_at": entry.at,  # a real date, for whoever looks at the collection
            "seq": seq,
            "slot": slot(seq, entry.buyer_id),
            "balances": balances,
            **outbox_fields([entries.event(entry, seq)], relay.claim() if relay else None),
        }
        try:
            await self.entries.insert_one(doc)
        except DuplicateKeyError:
            return False
        if relay is not None:
            relay.wake(entry.entry_id, collection=self.entries, entries=doc[OUTBOX])
        return True

    async def _advance(self, buyer_id: str, seq: int, balances: dict[str, int]) -> None:
        """Cache a newer head. Only a hint (reads walk past a stale one), so failing is harmless."""
        try:
            await self.accounts.update_one(
                {"_id": buyer_id, "seq": {"$lt": seq}}, {"$set": {"seq": seq, "balances": balances}}, upsert=True
            )
        except DuplicateKeyError:
            pass  # a head as new or newer is cached already
        except PyMongoError:
            log.warning("store-credit head not cached", extra={"buyer_id": buyer_id, "seq": seq}, exc_info=True)
