"""The ledger gateway: for marketplaces that settle refunds themselves from our events.

Paying means writing one ledger entry per idempotency key (a unique `_id`), which the marketplace
settles from `refund.issued`; a second call with the same key finds the first entry.
"""

from __future__ import annotations

import uuid

from motor.motor_asyncio import AsyncIOMotorCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from services.refunds.domain import gateway_keys
from services.refunds.gateways.base import GatewayRefund, GatewayUnavailable
from shared.clock import Clock


class LedgerGateway:
    name = "ledger"

    def __init__(self, entries: AsyncIOMotorCollection, clock: Clock) -> None:
        self._entries = entries
        self._clock = clock

    async def ensure_indexes(self) -> None:
        # Entries are only ever looked up by `_id` (their key; see `find`): no other index.
        return None

    async def refund(self, request: GatewayRefund) -> str:
        reference = "lg_" + uuid.uuid5(uuid.NAMESPACE_URL, request.idempotency_key).hex
        entry = {
            "_id": request.idempotency_key,
            "reference": reference,
            "refund_id": request.refund_id,
            "order_id": request.order_id,
            "return_id": request.return_id,
            "claim_id": request.claim_id,
            "payment_reference": request.payment_reference,
            "amount": request.amount.amount,
            "currency": request.amount.currency,
            "at": self._clock.now(),
        }
        try:
            await self._entries.insert_one(entry)
        except DuplicateKeyError:
            pass  # the same key was paid before: answer as the first call did
        except PyMongoError as exc:
            raise GatewayUnavailable(f"ledger: {type(exc).__name__}") from exc
        return reference

    async def find(self, request: GatewayRefund) -> str | None:
        """The entry paid under any of the refund's keys: rounds 0..`key_round`, each one read by `_id`.

        An entry is only ever written under the refund's key of the round (`refund`), and a round's
        key is `domain.gateway_key(refund_id, round)`, so these are all the entries it can have.
        """
        try:
            for key in gateway_keys(request.refund_id, request.key_round):
                entry = await self._entries.find_one({"_id": key}, {"reference": 1})
                if entry is not None:
                    return str(entry["reference"])
        except PyMongoError as exc:
            raise GatewayUnavailable(f"ledger: {type(exc).__name__}") from exc
        return None

    async def close(self) -> None:
        return None
