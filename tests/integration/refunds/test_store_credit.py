"""Store credit on the real servers: grants once per refund, debits once per key, never below zero
(concurrent debits through HTTP), each applied entry announced once through the outbox."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.refunds.app import create_app
from services.refunds.gateways.base import GatewayDeclined
from services.refunds.store_credit import entries
from services.refunds.store_credit.gateway import StoreCreditGateway
from services.refunds.store_credit.store import ENTRIES
from tests.integration.refunds.store_credit_support import (
    BUYER,
    all_published,
    credit_events,
    grant_request,
    none_pending,
    post_debit,
)

pytestmark = pytest.mark.integration
__all__ = ["credit_events"]  # the fixture, imported for this module


def gateway_of(service) -> StoreCreditGateway:
    return StoreCreditGateway(service.app.state.store_credit, service.clock)


async def balances(service, buyer_id: str = BUYER.id) -> list[dict]:
    response = await service.http.get(f"/v1/store-credit/{buyer_id}", headers=service.token("agent", "a-1"))
    assert response.status_code == 200, response.text
    return response.json()["balances"]


async def test_a_refund_is_granted_once_however_often_the_gateway_is_called(service, credit_events):
    gateway = gateway_of(service)
    request = grant_request("rf_ret-1", 10000, bonus=500)
    assert await gateway.find(request) is None

    references = await asyncio.gather(*(gateway.refund(request) for _ in range(6)))
    references.append(await gateway.refund(request))

    assert set(references) == {entries.grant_id("rf_ret-1")} and await gateway.find(request) == references[0]
    assert await balances(service) == [{"amount": 10500, "currency": "USD"}]
    assert await service.db[ENTRIES].count_documents({}) == 1
    await all_published(service, credit_events)
    [granted] = credit_events.of_type("store_credit.granted")
    assert granted.subject == BUYER.id
    assert (granted.data["amount"], granted.data["bonus"], granted.data["balance"]) == (
        {"amount": 10500, "currency": "USD"},
        {"amount": 500, "currency": "USD"},
        {"amount": 10500, "currency": "USD"},
    )
    assert (granted.data["refund_id"], granted.data["seller_id"], granted.data["actor"]) == (
        "rf_ret-1",
        "s-1",
        {"role": "platform", "id": "refunds"},
    )


async def test_a_grant_without_a_buyer_is_declined(service):
    request = grant_request("rf_x", 100)
    with pytest.raises(GatewayDeclined):
        await gateway_of(service).refund(type(request)(**{**vars(request), "buyer": None}))


async def test_two_concurrent_debits_beyond_the_balance_exactly_one_lands(service, credit_events):
    await gateway_of(service).refund(grant_request("rf_ret-2", 10000))
    agent = service.token("agent", "a-1")

    first, second = await asyncio.gather(
        post_debit(service.http, agent, 6000, key="k-1"), post_debit(service.http, agent, 6000, key="k-2")
    )

    assert sorted([first.status_code, second.status_code]) == [201, 422], (first.text, second.text)
    refused = first if first.status_code == 422 else second
    problem = refused.json()
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert problem["errors"][0]["field"] == "amount"
    assert problem["errors"][0]["reason"] == "exceeds the store-credit balance of 4000 USD"
    assert await balances(service) == [{"amount": 4000, "currency": "USD"}]
    await all_published(service, credit_events)
    [debited] = credit_events.of_type("store_credit.debited")
    assert debited.data["balance"] == {"amount": 4000, "currency": "USD"}
    assert debited.data["actor"] == {"role": "agent", "id": "a-1"}


async def test_a_debit_is_applied_once_per_key_and_replayed(service, credit_events):
    await gateway_of(service).refund(grant_request("rf_ret-3", 5000))
    caller = service.token("service", "checkout")

    first = await post_debit(service.http, caller, 1200, key="order-77")
    again = await post_debit(service.http, caller, 1200, key="order-77")
    other_caller = await post_debit(service.http, service.token("agent", "a-2"), 1200, key="order-77")
    changed = await post_debit(service.http, service.token("agent", "a-3"), 999, key="order-77")

    assert (first.status_code, again.status_code, other_caller.status_code) == (201, 201, 201), first.text
    entry = first.json()
    assert again.json() == entry and other_caller.json() == entry
    assert first.headers["location"] == f"/v1/store-credit/{BUYER.id}/entries/{entry['entry_id']}"
    assert (entry["kind"], entry["reference"], entry["balance"]["amount"]) == ("debit", "chk-1", 3800)
    assert changed.status_code == 422 and changed.json()["field"] == "Idempotency-Key"
    assert await balances(service) == [{"amount": 3800, "currency": "USD"}]
    located = await service.http.get(first.headers["location"], headers=service.token("buyer", BUYER.id))
    assert located.status_code == 200 and located.json() == entry
    await all_published(service, credit_events)
    assert len(credit_events.of_type("store_credit.debited")) == 1


async def test_concurrent_retries_of_one_key_debit_once(service, credit_events):
    await gateway_of(service).refund(grant_request("rf_ret-4", 10000))
    # Different callers: each gets past the HTTP layer's own Idempotency-Key record (it is kept per
    # caller), so only the store's once-per-(buyer, key) stands between them and a second debit.
    callers = [service.token("agent", f"a-{n}") for n in range(4)] + [service.token("service", "checkout")] * 4

    responses = await asyncio.gather(*(post_debit(service.http, caller, 700, key="retry-me") for caller in callers))

    assert {r.status_code for r in responses} <= {201, 409} and any(r.status_code == 201 for r in responses)
    assert len({r.json()["entry_id"] for r in responses if r.status_code == 201}) == 1
    assert await balances(service) == [{"amount": 9300, "currency": "USD"}]
    assert await service.db[ENTRIES].count_documents({"kind": "debit"}) == 1
    await all_published(service, credit_events)
    assert len(credit_events.of_type("store_credit.debited")) == 1


async def test_debits_need_a_key_a_positive_amount_and_a_balance_in_that_currency(service, credit_events):
    await gateway_of(service).refund(grant_request("rf_ret-5", 3000))
    agent = service.token("agent", "a-1")

    no_key = await post_debit(service.http, agent, 100, key=None)
    zero = await post_debit(service.http, agent, 0, key="z")
    other_currency = await post_debit(service.http, agent, 100, key="e", currency="EUR")
    by_buyer = await post_debit(service.http, service.token("buyer", BUYER.id), 100, key="b")

    assert no_key.status_code == 422 and no_key.json()["errors"][0]["field"] == "Idempotency-Key"
    assert zero.status_code == 422 and zero.json()["errors"][0]["field"].startswith("amount")
    assert other_currency.status_code == 422
    assert other_currency.json()["errors"][0] == {
        "field": "amount",
        "location": "body",
        "reason": "exceeds the store-credit balance of 0 EUR",
    }
    assert by_buyer.status_code == 403
    assert await balances(service) == [{"amount": 3000, "currency": "USD"}]


async def test_a_buyer_sees_only_their_own_store_credit_newest_entry_first(service, credit_events):
    gateway = gateway_of(service)
    await gateway.refund(grant_request("rf_a", 1000))
    await gateway.refund(grant_request("rf_b", 2000, currency="EUR"))
    await post_debit(service.http, service.token("agent", "a-1"), 400, key="d-1")

    own = await service.http.get(f"/v1/store-credit/{BUYER.id}", headers=service.token("buyer", BUYER.id))
    other = await service.http.get(f"/v1/store-credit/{BUYER.id}", headers=service.token("buyer", "b-2"))
    seller = await service.http.get(f"/v1/store-credit/{BUYER.id}/entries", headers=service.token("seller", "s-1"))
    assert own.json() == {
        "buyer_id": BUYER.id,
        "balances": [{"amount": 2000, "currency": "EUR"}, {"amount": 600, "currency": "USD"}],
    }
    assert (other.status_code, seller.status_code) == (404, 404)

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await service.http.get(
            f"/v1/store-credit/{BUYER.id}/entries", params=params, headers=service.token("buyer", BUYER.id)
        )
        assert page.status_code == 200, page.text
        seen += [(e["kind"], e["amount"]["amount"]) for e in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [("debit", 400), ("grant", 2000), ("grant", 1000)]


async def test_two_replicas_debiting_at_once_never_go_below_zero(service, credit_events):
    await gateway_of(service).refund(grant_request("rf_ret-6", 10000))
    other = create_app(service.settings, service.clock)  # a second replica: its own clients, same database
    async with LifespanManager(other, startup_timeout=20, shutdown_timeout=20):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://refunds") as http:
            agent = service.token("agent", "a-1")
            results = await asyncio.gather(
                *(
                    post_debit(c, agent, 3000, key=f"r-{n}-{i}")
                    for n in range(3)
                    for i, c in enumerate((service.http, http))
                )
            )

    assert sorted(r.status_code for r in results) == [201] * 3 + [422] * 3, [r.text for r in results]
    assert await balances(service) == [{"amount": 1000, "currency": "USD"}]
    await all_published(service, credit_events)
    assert len(credit_events.of_type("store_credit.debited")) == 3


async def test_an_event_no_one_is_bound_to_counts_as_published(service):
    """store_credit.* are announcements: with no queue bound (subscribers may ignore
    `store_credit.debited`), the entry's outbox is emptied instead of retried forever."""
    await gateway_of(service).refund(grant_request("rf_ret-7", 500))
    debited = await post_debit(service.http, service.token("agent", "a-1"), 200, key="nobody-listens")

    assert debited.status_code == 201
    await service.wait_until(
        lambda: none_pending(service.db[ENTRIES]), timeout=5, message="unroutable events kept in the outbox"
    )
