"""The HTTP platform against the real MongoDB-wire server at MONGODB_URL: a tiny app built by
create_service_app, exercising Idempotency-Key, limits, errors, request ids, metrics and health."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from shared.clock import FixedClock
from shared.http import Conflict
from shared.idempotency import COLLECTION, IdempotencyStore, Idempotent, fingerprint
from shared.mongo import connect, ping
from shared.observability import add_readiness_check
from shared.pagination import Cursor, page_filter, page_sort, sign_cursor
from shared.service import create_service_app
from shared.settings import CommonSettings
from shared.tokens import mint

pytestmark = pytest.mark.integration

MONGODB_URL = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017")
SETTINGS = CommonSettings(
    service_name="refunds",
    jwt_secret="integration-" + "k" * 52,
    mongodb_url=MONGODB_URL,
    mongodb_db=f"test_http_platform_{uuid.uuid4().hex[:8]}",
    max_body_bytes=2048,
)
CLOCK = FixedClock(datetime(2025, 6, 2, 9, 0, tzinfo=UTC))


class RefundRequest(BaseModel):
    amount: int = Field(gt=0)
    note: str | None = None


class Calls:
    """What the handlers did, and a gate that holds them mid-flight."""

    def __init__(self) -> None:
        self.count = 0
        self.gate: asyncio.Event | None = None


calls = Calls()
router = APIRouter()


@router.post("/v1/orders/{order_id}/refunds", status_code=201)
async def create_refund(order_id: str, body: RefundRequest, idem: Idempotent) -> JSONResponse:
    async def issue() -> JSONResponse:
        calls.count += 1
        if calls.gate is not None:
            await calls.gate.wait()
        refund_id = f"rf-{uuid.uuid4().hex[:8]}"
        return JSONResponse(
            {"refund_id": refund_id, "order_id": order_id, "amount": body.amount, "by": idem.principal.ref},
            status_code=201,
            headers={"Location": f"/v1/refunds/{refund_id}"},
        )

    return await idem.run(issue)


@router.post("/v1/orders/{order_id}/cancel")
async def cancel(order_id: str, idem: Idempotent) -> JSONResponse:
    async def refuse() -> None:
        calls.count += 1
        raise Conflict("The order is already being refunded.")

    return await idem.run(refuse)


@router.get("/v1/things")
async def list_things(request: Request, cursor: Cursor = None) -> dict[str, int]:
    found = request.app.state.db.things.find(page_filter(cursor, "rank")).sort(page_sort("rank"))
    return {"count": len(await found.to_list(10))}


amqp_up = {"ok": True}


@asynccontextmanager
async def mongo_lifespan(app):
    client, db = connect(SETTINGS.mongodb_url, SETTINGS.database_name)
    app.state.db = db
    app.state.idempotency = IdempotencyStore(db, clock=CLOCK, lease=timedelta(seconds=30))
    await app.state.idempotency.ensure_indexes()
    add_readiness_check(app, "mongodb", lambda: ping(db))
    add_readiness_check(app, "amqp", lambda: amqp_up["ok"])  # the bus's own check in a service
    try:
        yield
    finally:
        await client.drop_database(SETTINGS.database_name)
        client.close()


@pytest.fixture(scope="module")
async def running():
    app = create_service_app(
        SETTINGS, title="refunds (test)", routers=[router], lifespan=mongo_lifespan, configure_logs=False
    )
    async with LifespanManager(app) as manager:
        yield app, manager.app


@pytest.fixture(scope="module")
def app(running):
    return running[0]


@pytest.fixture(scope="module")
async def client(running):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(running[1]), base_url="http://refunds") as client:
        yield client


@pytest.fixture(autouse=True)
def reset_calls():
    calls.count, calls.gate = 0, None


def seller(sub: str = "s-1", key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {mint(SETTINGS, 'seller', sub, 'refunds')}"}
    return headers | ({"Idempotency-Key": key} if key else {})


def new_key() -> str:
    return str(uuid.uuid4())


# ---- Idempotency-Key ------------------------------------------------------------------------


async def test_same_key_and_body_replays_the_first_response_and_runs_once(client):
    key = new_key()
    first = await client.post("/v1/orders/o-1/refunds", json={"amount": 500, "note": "dent"}, headers=seller(key=key))
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    # same body, other key order and spacing
    again = await client.post(
        "/v1/orders/o-1/refunds",
        content=b'{"note":"dent",  "amount":500}',
        headers=seller(key=key) | {"content-type": "application/json"},
    )
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert calls.count == 1


async def test_same_key_with_another_body_is_422(client):
    key = new_key()
    assert (
        await client.post("/v1/orders/o-1/refunds", json={"amount": 500}, headers=seller(key=key))
    ).status_code == 201
    for other in ({"amount": 501}, {"amount": 500, "note": "x"}):
        response = await client.post("/v1/orders/o-1/refunds", json=other, headers=seller(key=key))
        assert response.status_code == 422
        assert response.json()["type"].endswith("/idempotency-key-reused")
    # the same key on another order is another request too
    response = await client.post("/v1/orders/o-2/refunds", json={"amount": 500}, headers=seller(key=key))
    assert response.status_code == 422
    assert calls.count == 1


async def test_keys_are_scoped_to_the_principal(client):
    key = new_key()
    one = await client.post("/v1/orders/o-1/refunds", json={"amount": 5}, headers=seller("s-1", key))
    two = await client.post("/v1/orders/o-1/refunds", json={"amount": 5}, headers=seller("s-2", key))
    assert one.status_code == two.status_code == 201
    assert one.json()["refund_id"] != two.json()["refund_id"] and calls.count == 2


async def test_concurrent_requests_with_one_key_run_once(client):
    key = new_key()
    calls.gate = asyncio.Event()
    first = asyncio.create_task(client.post("/v1/orders/o-1/refunds", json={"amount": 9}, headers=seller(key=key)))
    while calls.count == 0:
        await asyncio.sleep(0.01)
    racers = await asyncio.gather(
        *(client.post("/v1/orders/o-1/refunds", json={"amount": 9}, headers=seller(key=key)) for _ in range(5))
    )
    for response in racers:
        assert response.status_code == 409
        assert response.json()["type"].endswith("/idempotency-key-in-progress")
        assert int(response.headers["retry-after"]) >= 1
    calls.gate.set()
    assert (await first).status_code == 201
    replay = await client.post("/v1/orders/o-1/refunds", json={"amount": 9}, headers=seller(key=key))
    assert replay.json() == (await first).json()
    assert calls.count == 1


async def test_simultaneous_first_requests_run_once(client):
    key = new_key()
    calls.gate = asyncio.Event()
    tasks = [
        asyncio.create_task(client.post("/v1/orders/o-3/refunds", json={"amount": 3}, headers=seller(key=key)))
        for _ in range(6)
    ]
    await asyncio.sleep(0.3)
    calls.gate.set()
    statuses = sorted(response.status_code for response in await asyncio.gather(*tasks))
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}
    assert calls.count == 1


async def test_a_crashed_requests_lease_expires(app, client):
    store: IdempotencyStore = app.state.idempotency
    key = new_key()
    body = b'{"amount": 7}'
    stale = await store.begin(
        "POST /v1/orders/{order_id}/refunds",
        "seller:s-1",
        key,
        fingerprint(body, method="POST", path="/v1/orders/o-1/refunds"),
    )
    headers = seller(key=key) | {"content-type": "application/json"}
    blocked = await client.post("/v1/orders/o-1/refunds", content=body, headers=headers)
    assert blocked.status_code == 409 and calls.count == 0
    CLOCK.advance(timedelta(seconds=31))
    taken_over = await client.post("/v1/orders/o-1/refunds", content=body, headers=headers)
    assert taken_over.status_code == 201 and calls.count == 1
    assert not await store.complete(stale, 201, b"{}", [])  # the crashed holder can no longer complete


async def test_failed_requests_are_not_stored_so_a_retry_runs_again(client):
    key = new_key()
    for _ in range(2):
        response = await client.post("/v1/orders/o-1/cancel", headers=seller(key=key))
        assert response.status_code == 409 and response.json()["detail"] == "The order is already being refunded."
    assert calls.count == 2


async def test_without_a_key_every_request_runs(client):
    for _ in range(2):
        assert (await client.post("/v1/orders/o-1/refunds", json={"amount": 1}, headers=seller())).status_code == 201
    assert calls.count == 2


async def test_the_key_header_is_validated(client):
    response = await client.post("/v1/orders/o-1/refunds", json={"amount": 1}, headers=seller(key="k" * 256))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    response = await client.post("/v1/orders/o-1/refunds", json={"amount": 1}, headers=seller(key="has space"))
    assert response.status_code == 422 and calls.count == 0


async def test_expired_records_are_purged(app):
    store: IdempotencyStore = app.state.idempotency
    claim = await store.begin("scope", "seller:s-9", new_key(), "fp")
    assert await store.complete(claim, 201, b"{}", [])
    CLOCK.advance(timedelta(hours=25))
    assert await store.purge_expired() >= 1
    assert await app.state.db[COLLECTION].count_documents({"_id": claim.id}) == 0


# ---- the rest of the platform ---------------------------------------------------------------


async def test_oversized_bodies_are_413_before_the_handler(client):
    big = {"amount": 1, "note": "x" * 4000}
    response = await client.post("/v1/orders/o-1/refunds", json=big, headers=seller(key=new_key()))
    assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"

    async def chunks():
        for _ in range(5):
            yield b" " * 1000

    response = await client.post(
        "/v1/orders/o-1/refunds", content=chunks(), headers=seller(key=new_key()) | {"content-type": "application/json"}
    )
    assert response.status_code == 413 and calls.count == 0


async def test_malformed_json_is_a_400_problem(client):
    response = await client.post(
        "/v1/orders/o-1/refunds",
        content=b'{"amount": ',
        headers=seller(key=new_key()) | {"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("/malformed-json") and calls.count == 0


async def test_request_id_is_echoed(client):
    response = await client.post(
        "/v1/orders/o-1/refunds", json={"amount": 0}, headers=seller() | {"X-Request-ID": "trace-77"}
    )
    assert response.status_code == 422
    assert response.headers["x-request-id"] == "trace-77" and response.json()["request_id"] == "trace-77"
    assert response.json()["errors"][0]["field"] == "amount"


async def test_metrics_and_health(client):
    await client.post("/v1/orders/o-1/refunds", json={"amount": 1}, headers=seller())
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert 'http_requests_total{method="POST",route="/v1/orders/{order_id}/refunds",status="201"}' in metrics.text
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"mongodb": "ok", "amqp": "ok"}
    amqp_up["ok"] = False
    try:
        not_ready = await client.get("/readyz")
        assert not_ready.status_code == 503 and not_ready.json()["checks"]["amqp"] == "failing"
    finally:
        amqp_up["ok"] = True


def raw_cursor(k: object, signed: bool = True) -> str:
    """A cursor holding `k`; signed with the app's key: what a leaked key could forge."""
    raw = json.dumps({"k": k, "id": "t-1"}).encode()
    return sign_cursor(raw) if signed else base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "k",
    [
        2**70,  # no BSON integer holds it
        -(2**63) - 1,
        {"$dt": "0001-01-01T00:00:00+14:00"},  # before year 1 in UTC
        {"$dt": "9999-12-31T23:59:59-14:00"},  # after year 9999 in UTC
    ],
)
async def test_a_cursor_the_store_cannot_hold_is_a_400_naming_it(client, k):
    response = await client.get("/v1/things", params={"cursor": raw_cursor(k)})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["cursor"]
    assert (await client.get("/v1/things", params={"cursor": raw_cursor(2**63 - 1)})).json() == {"count": 0}


@pytest.mark.parametrize("cursor", [raw_cursor(1, signed=False), "garbage", "A" * 64])
async def test_a_forged_cursor_is_a_400_never_a_store_error(client, cursor):
    response = await client.get("/v1/things", params={"cursor": cursor})
    assert response.status_code == 400, response.text
    assert response.json()["type"].endswith("/invalid-cursor")
    assert [e["field"] for e in response.json()["errors"]] == ["cursor"]
