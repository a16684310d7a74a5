"""Per-order ledger: what the buyer paid, what is refunded, what refunds being paid have reserved,
and what the order's returns brought back (which decides the refund that carries the outbound shipping).

What the buyer paid is the order (`paid`) plus the return postage they paid on unpaid labels
(`postage_paid`, counted once per return when its refund opens). `available` = paid + postage_paid
− refunded − reserved is kept as a field so "is there room for this refund?" is a plain range
condition on one document: two concurrent refunds of one order cannot both take the last of it.
Each refund reserves, settles or releases under its own key, so every step is idempotent and can be
repeated after a crash.
"""

from __future__ import annotations

from typing import Any

from motor.motor_asyncio import AsyncIOMotorCollection
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.refunds.policy import CameBack
from shared.money import INT64_MAX

_ATTEMPTS = 5  # re-reads when a concurrent change slipped between a read and a conditional write


class NoLedger(LookupError):
    """The order was never delivered to us (no `order.delivered` yet)."""


class CapExceeded(Exception):
    """The refund would take the order's refunds beyond what the buyer paid."""

    def __init__(self, order_id: str, available: int) -> None:
        super().__init__(f"order {order_id}: only {available} left to refund")
        self.order_id, self.available = order_id, available


def came_back_so_far(ledger: dict[str, Any]) -> list[CameBack]:
    """What the order's returns brought back, in the order their refunds opened (oldest first)."""
    entries = ledger.get("came_back", {})
    return [
        CameBack(
            return_id,
            tuple((line_id, units) for line_id, units in entries[return_id]["units"]),
            entries[return_id]["seller_fault"],
        )
        for return_id in ledger.get("came_back_order", [])
    ]


class OrderLedgers:
    def __init__(self, collection: AsyncIOMotorCollection) -> None:
        self.collection = collection

    async def open(self, order_id: str, currency: str, paid: int) -> None:
        try:
            await self.collection.insert_one(
                {
                    "_id": order_id,
                    "currency": currency,
                    "paid": paid,
                    "postage_paid": 0,
                    "available": paid,
                    "reserved": 0,
                    "refunded": 0,
                    "postage": {},
                    "reservations": {},
                    "settled": {},
                }
            )
        except DuplicateKeyError:
            pass

    async def count_postage(self, order_id: str, return_id: str, amount: int) -> bool:
        """Add the return postage the buyer paid for one return to the cap (once per return).

        False when it cannot be counted because the ledger's sums would leave 64 bits (a postage
        nobody paid): the refund then meets the cap without it.
        """
        result = await self.collection.update_one(
            {"_id": order_id, f"postage.{return_id}": {"$exists": False}, "available": {"$lte": INT64_MAX - amount}},
            {"$set": {f"postage.{return_id}": amount}, "$inc": {"postage_paid": amount, "available": amount}},
        )
        if result.matched_count:
            return True
        ledger = await self.get(order_id)
        if ledger is None:
            raise NoLedger(order_id)
        return return_id in ledger.get("postage", {})  # counted before (a redelivery) or out of range

    async def note_came_back(self, order_id: str, back: CameBack) -> list[CameBack]:
        """Record what a return brought back (once per return, in the order its refund opened) and
        answer what every return of the order brought back so far, in that order."""
        entry = {"units": [list(pair) for pair in back.units], "seller_fault": back.seller_fault}
        ledger = await self.collection.find_one_and_update(
            {"_id": order_id, f"came_back.{back.return_id}": {"$exists": False}},
            {"$set": {f"came_back.{back.return_id}": entry}, "$push": {"came_back_order": back.return_id}},
            return_document=ReturnDocument.AFTER,
        )
        if ledger is None:  # recorded before (a redelivery), or no ledger
            ledger = await self.get(order_id)
            if ledger is None:
                raise NoLedger(order_id)
        return came_back_so_far(ledger)

    async def get(self, order_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": order_id})

    async def reserve(self, order_id: str, refund_id: str, amount: int) -> None:
        result = await self.collection.update_one(
            {
                "_id": order_id,
                "available": {"$gte": amount},
                f"reservations.{refund_id}": {"$exists": False},
                f"settled.{refund_id}": {"$exists": False},
            },
            {"$inc": {"available": -amount, "reserved": amount}, "$set": {f"reservations.{refund_id}": amount}},
        )
        if result.matched_count:
            return
        ledger = await self.get(order_id)
        if ledger is None:
            raise NoLedger(order_id)
        held = ledger["reservations"].get(refund_id)
        if refund_id in ledger["settled"] or held == amount:
            return  # reserved (or even paid) before a crash, or held since a round the gateway never answered
        # Held for another amount: a refund that may have been paid is never changed (refunding.py
        # refuses it), so this is not expected; refused rather than paid beyond what was checked.
        raise CapExceeded(order_id, ledger["available"])

    async def release(self, order_id: str, refund_id: str) -> None:
        for _ in range(_ATTEMPTS):
            ledger = await self.get(order_id)
            amount = None if ledger is None else ledger["reservations"].get(refund_id)
            if amount is None:
                return
            result = await self.collection.update_one(
                {"_id": order_id, f"reservations.{refund_id}": amount},
                {"$unset": {f"reservations.{refund_id}": ""}, "$inc": {"available": amount, "reserved": -amount}},
            )
            if result.matched_count:
                return
        raise RuntimeError(f"ledger {order_id}: could not release {refund_id}")

    async def settle(self, order_id: str, refund_id: str, amount: int) -> None:
        """Count a paid refund: its reservation becomes refunded money."""
        # The usual case in one write: the payer reserved exactly `amount` under this refund's key.
        if await self._settle_reserved(order_id, refund_id, amount, amount):
            return
        for _ in range(_ATTEMPTS):
            ledger = await self.get(order_id)
            if ledger is None:
                raise NoLedger(order_id)
            if refund_id in ledger["settled"]:
                return
            reserved = ledger["reservations"].get(refund_id)
            if reserved is not None:
                if await self._settle_reserved(order_id, refund_id, reserved, amount):
                    return
                continue
            # Paid although its reservation was released (an outcome learnt late): count it anyway.
            query = {"_id": order_id, f"settled.{refund_id}": {"$exists": False}}
            update = {"$set": {f"settled.{refund_id}": amount}, "$inc": {"refunded": amount, "available": -amount}}
            if (await self.collection.update_one(query, update)).matched_count:
                return
        raise RuntimeError(f"ledger {order_id}: could not settle {refund_id}")

    async def _settle_reserved(self, order_id: str, refund_id: str, reserved: int, amount: int) -> bool:
        """Turn the reservation of `reserved` under this refund's key into `amount` refunded; False when
        the ledger holds no such reservation (settled already, released, or another amount)."""
        result = await self.collection.update_one(
            {"_id": order_id, f"reservations.{refund_id}": reserved},
            {
                "$unset": {f"reservations.{refund_id}": ""},
                "$set": {f"settled.{refund_id}": amount},
                "$inc": {"reserved": -reserved, "refunded": amount, "available": reserved - amount},
            },
        )
        return result.matched_count == 1
