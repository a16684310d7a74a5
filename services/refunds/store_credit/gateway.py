"""The `store_credit` payment gateway: a refund paid into the buyer's store-credit balance.

Chosen by the refund's destination (`store_credit`), not by the order's payment provider. A grant
is keyed by the refund id, not by the round's idempotency key: however often and under whichever
key the payer calls, a refund credits the buyer once, and `find` answers that grant.
"""

from __future__ import annotations

from pymongo.errors import PyMongoError

from services.refunds.gateways.base import GatewayDeclined, GatewayRefund, GatewayUnavailable
from services.refunds.store_credit import entries
from services.refunds.store_credit.store import StoreCreditBusy, StoreCreditStore
from shared.clock import Clock
from shared.money import CurrencyMismatch


class StoreCreditGateway:
    name = "store_credit"

    def __init__(self, store: StoreCreditStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def ensure_indexes(self) -> None:
        await self._store.ensure_indexes()

    async def refund(self, request: GatewayRefund) -> str:
        """Credit `amount` + `bonus` to `buyer` once per refund id; the grant's entry id is the reference."""
        if request.buyer is None:
            raise GatewayDeclined(f"store_credit: refund {request.refund_id} names no buyer to credit")
        try:
            entry = entries.grant(
                refund_id=request.refund_id,
                buyer=request.buyer,
                amount=request.amount,
                bonus=request.bonus,
                at=self._clock.now(),
                seller_id=request.seller_id,
                return_id=request.return_id,
                order_id=request.order_id,
            )
        except CurrencyMismatch as exc:
            raise GatewayDeclined(f"store_credit: the bonus is in another currency ({exc})") from exc
        try:
            granted, _ = await self._store.apply(entry)
        except (PyMongoError, StoreCreditBusy) as exc:
            raise GatewayUnavailable(f"store_credit: {type(exc).__name__}") from exc
        return granted.entry_id

    async def find(self, request: GatewayRefund) -> str | None:
        """The grant made for `request.refund_id` (whatever its key round), if any."""
        try:
            found = await self._store.get(entries.grant_id(request.refund_id))
        except PyMongoError as exc:
            raise GatewayUnavailable(f"store_credit: {type(exc).__name__}") from exc
        return None if found is None else found.entry_id

    async def close(self) -> None:
        return None
