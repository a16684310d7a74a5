"""Idempotency-Key with the answer sent before it is stored (`answer_first`, shared/idempotency.py),
against the real MongoDB-wire server: the client does not wait for the stored answer's write, and a
retry meanwhile still gets that answer, not a 409."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse

from shared.http.created import create_once
from shared.idempotency import Claim, IdempotencyStore, Idempotent
from shared.mongo import connect
from shared.service import create_service_app
from shared.settings import CommonSettings
from shared.tokens import mint

pytestmark = pytest.mark.integration

SETTINGS = CommonSettings(
    service_name="returns",
    jwt_secret="integration-" + "k" * 52,
    mongodb_url=os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017"),
    mongodb_db=f"test_answer_first_{uuid.uuid4().hex[:8]}",
)


class Made(BaseModel):
    id: str
    runs: int


class HeldStore(IdempotencyStore):
    """Stored answers wait at a gate; `waiting` is set once a request looks at a key in progress."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate, self.storing, self.waiting = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def complete(self, claim: Claim, status: int, body: bytes, headers: list[tuple[str, str]]) -> bool:
        self.storing.set()
        await self.gate.wait()
        return await super().complete(claim, status, body, headers)

    async def _settled(self, doc_id: str, fingerprint: str) -> dict[str, Any] | None:
        self.waiting.set()
        return await super()._settled(doc_id, fingerprint)


runs: dict[str, int] = {}
router = APIRouter()


async def make(idem: Idempotent, *, answer_first: bool) -> Any:
    async def once() -> Made:
        made = f"thing-{idem.key}"  # derived from the key: a re-run would find it
        runs[made] = runs.get(made, 0) + 1
        return Made(id=made, runs=runs[made])

    return await create_once(idem, once, lambda m: f"/v1/things/{m.id}", answer_first=answer_first)


@router.post("/v1/things", status_code=201)
async def create_thing(idem: Idempotent) -> Any:
    return await make(idem, answer_first=True)


@router.post("/v1/stored-first-things", status_code=201)
async def create_stored_first(idem: Idempotent) -> Any:
    return await make(idem, answer_first=False)


@router.post("/v1/slow-after")
async def slow_after() -> JSONResponse:
    return JSONResponse({}, background=BackgroundTask(asyncio.sleep, 0.3))


@asynccontextmanager
async def lifespan(app: Any) -> Any:
    client, db = connect(SETTINGS.mongodb_url, SETTINGS.database_name)
    app.state.idempotency = HeldStore(db)
    try:
        yield
    finally:
        await client.drop_database(SETTINGS.database_name)
        client.close()


@pytest.fixture(scope="module")
async def running() -> Any:
    built = create_service_app(SETTINGS, title="answer first (test)", routers=[router], lifespan=lifespan)
    async with LifespanManager(built) as manager:
        yield built, manager.app


@pytest.fixture(scope="module")
def app(running: Any) -> Any:
    return running[1]  # with the lifespan's state


@pytest.fixture
def store(running: Any) -> HeldStore:
    held: HeldStore = running[0].state.idempotency
    held.gate, held.storing, held.waiting = asyncio.Event(), asyncio.Event(), asyncio.Event()
    held.settle = timedelta(milliseconds=250)
    return held


def headers(key: str) -> list[tuple[bytes, bytes]]:
    token = mint(SETTINGS, "buyer", "b-1", "returns")
    return [(b"authorization", f"Bearer {token}".encode()), (b"idempotency-key", key.encode())]


async def post(app: Any, path: str, key: str, sent: list[dict[str, Any]]) -> None:
    """One POST straight through ASGI, noting each message the app sends as it sends it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers(key),
        "client": ("127.0.0.1", 1),
        "server": ("returns", 80),
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # no disconnect while the test runs
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)


def answered(sent: list[dict[str, Any]]) -> bool:
    return any(m["type"] == "http.response.body" and not m.get("more_body") for m in sent)


@pytest.mark.parametrize("answer_first", [True, False])
async def test_the_answer_goes_out_before_its_write_only_when_asked(app, store, answer_first):
    sent: list[dict[str, Any]] = []
    path = "/v1/things" if answer_first else "/v1/stored-first-things"
    request = asyncio.create_task(post(app, path, f"k-{uuid.uuid4().hex}", sent))
    await asyncio.wait_for(store.storing.wait(), 5)  # the stored answer's write has begun, and waits
    assert answered(sent) is answer_first
    store.gate.set()
    await asyncio.wait_for(request, 5)
    assert answered(sent) and sent[0]["status"] == 201


async def test_a_retry_before_the_answer_is_stored_gets_it(app, store):
    key, first_sent, again_sent = f"k-{uuid.uuid4().hex}", [], []
    first = asyncio.create_task(post(app, "/v1/things", key, first_sent))
    await asyncio.wait_for(store.storing.wait(), 5)
    assert answered(first_sent)  # the client has its answer; a retry now finds the key in progress
    again = asyncio.create_task(post(app, "/v1/things", key, again_sent))
    await asyncio.wait_for(store.waiting.wait(), 5)
    store.gate.set()
    await asyncio.wait_for(asyncio.gather(first, again), 5)

    assert again_sent[0]["status"] == 201
    assert (b"idempotent-replayed", b"true") in again_sent[0]["headers"]
    body = json.loads(b"".join(m.get("body", b"") for m in again_sent if m["type"] == "http.response.body"))
    assert body == {"id": f"thing-{key}", "runs": 1}


async def test_a_key_in_progress_for_longer_than_the_settle_is_still_a_409(app, store):
    store.settle = timedelta(milliseconds=50)
    key = f"k-{uuid.uuid4().hex}"
    first = asyncio.create_task(post(app, "/v1/things", key, []))
    await asyncio.wait_for(store.storing.wait(), 5)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://returns") as client:
        began = time.monotonic()
        again = await client.post("/v1/things", headers=[(k.decode(), v.decode()) for k, v in headers(key)])
        waited = time.monotonic() - began
    store.gate.set()
    await asyncio.wait_for(first, 5)
    assert again.status_code == 409 and again.json()["type"].endswith("/idempotency-key-in-progress")
    assert waited >= 0.05  # it looked again for the settle before giving up


async def test_the_request_metric_ends_with_the_answer_not_with_work_after_it(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://returns") as client:
        began = time.monotonic()
        assert (await client.post("/v1/slow-after")).status_code == 200
        assert time.monotonic() - began >= 0.3  # ASGITransport waits for the background work too
        metrics = (await client.get("/metrics")).text
    line = next(
        ln
        for ln in metrics.splitlines()
        if ln.startswith('http_request_duration_seconds_sum{method="POST",route="/v1/slow-after"')
    )
    assert float(line.rsplit(" ", 1)[1]) < 0.3
