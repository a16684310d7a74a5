"""HTTP surface of store credit: a buyer's balances and entries, and debits by checkouts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.refunds.store_credit import entries
from services.refunds.store_credit.store import StoreCreditStore
from shared.auth import CurrentPrincipal, Principal, require_roles
from shared.http import NotFound, Unprocessable
from shared.http.created import LOCATION_RESPONSE, create_once
from shared.idempotency import HEADER, Idempotent
from shared.money import Money
from shared.openapi import IDEMPOTENCY_KEY_REQUIRED
from shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from shared.resolution_models import StoreCreditAccount, StoreCreditEntry

router = APIRouter(prefix="/v1/store-credit", tags=["store credit"])
BuyerId = Annotated[str, Path(min_length=1, max_length=128)]
EntryId = Annotated[str, Path(min_length=1, max_length=128)]
ServiceOrAgent = Annotated[Principal, Depends(require_roles("service", "agent"))]


class AccountNotFound(NotFound):
    title, slug = "Store-credit account not found", "store-credit-not-found"


class DebitRequest(BaseModel):
    """Spend some of the buyer's store credit (a checkout paying with it)."""

    model_config = ConfigDict(extra="forbid")

    amount: Money = Field(description="More than zero, at most the balance in that currency.")
    reference: str = Field(min_length=1, max_length=128, description="The checkout's own reference.")
    note: str | None = Field(default=None, max_length=1000)

    @field_validator("amount")
    @classmethod
    def _positive(cls, amount: Money) -> Money:
        if amount.amount <= 0:
            raise ValueError("must be more than zero")
        return amount


async def _store(request: Request) -> StoreCreditStore:
    return request.app.state.store_credit


StoreDep = Annotated[StoreCreditStore, Depends(_store)]


def _visible(principal: Principal, buyer_id: str) -> None:
    """The buyer themself, agents and services; anyone else is told there is no such account."""
    if not principal.may_access(buyer_id=buyer_id):
        raise AccountNotFound(f"No store credit for buyer {buyer_id}.")


def entry_location(entry: StoreCreditEntry) -> str:
    return f"/v1/store-credit/{entry.buyer_id}/entries/{entry.entry_id}"


@router.get("/{buyer_id}", response_model=StoreCreditAccount, summary="A buyer's store-credit balances")
async def get_store_credit(buyer_id: BuyerId, principal: CurrentPrincipal, store: StoreDep) -> StoreCreditAccount:
    _visible(principal, buyer_id)
    return await store.account(buyer_id)


@router.get("/{buyer_id}/entries", response_model=Page[StoreCreditEntry], summary="A buyer's store-credit entries")
async def list_store_credit_entries(
    buyer_id: BuyerId, principal: CurrentPrincipal, store: StoreDep, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Page[StoreCreditEntry]:
    """Grants and debits, newest first."""
    _visible(principal, buyer_id)
    return await store.page(buyer_id, cursor, limit)


@router.get("/{buyer_id}/entries/{entry_id}", response_model=StoreCreditEntry, summary="One store-credit entry")
async def get_store_credit_entry(
    buyer_id: BuyerId, entry_id: EntryId, principal: CurrentPrincipal, store: StoreDep
) -> StoreCreditEntry:
    _visible(principal, buyer_id)
    entry = await store.get(entry_id)
    if entry is None or entry.buyer_id != buyer_id:
        raise AccountNotFound(f"No store-credit entry {entry_id} for buyer {buyer_id}.")
    return entry


@router.post(
    "/{buyer_id}/debits",
    status_code=201,
    response_model=StoreCreditEntry,
    summary="Spend store credit (services, agents)",
    openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    responses={
        **LOCATION_RESPONSE,
        201: {**LOCATION_RESPONSE[201], "description": "The debit (the same one again for a repeated key)."},
        422: {"description": "No Idempotency-Key, or more than the balance in that currency (`amount`)."},
        503: {
            "description": "Too many debits for this buyer at once: retry after `Retry-After` seconds.",
            "headers": {"Retry-After": {"schema": {"type": "string"}}},
        },
    },
)
async def debit_store_credit(
    buyer_id: BuyerId,
    body: DebitRequest,
    principal: ServiceOrAgent,
    store: StoreDep,
    idempotent: Idempotent,
) -> Response:
    if idempotent.key is None:
        raise Unprocessable(
            f"{HEADER} is required: a debit spends money and must be safe to retry.",
            errors=[{"field": HEADER, "location": "header", "reason": "required"}],
        )
    entry = entries.debit(
        buyer_id=buyer_id,
        idempotency_key=idempotent.key,
        amount=body.amount,
        reference=body.reference,
        note=body.note,
        actor=principal.actor,
        at=store.clock.now(),
    )

    async def apply() -> StoreCreditEntry:
        return (await store.apply(entry))[0]

    return await create_once(idempotent, apply, entry_location)
