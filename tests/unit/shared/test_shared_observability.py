"""JSON logs with redaction, HTTP metrics by route template, liveness and readiness."""

from __future__ import annotations

import io
import json
import logging
from contextlib import asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter

from shared.observability import REDACTED, RedactingFilter, add_readiness_check, configure_logging, redact
from shared.service import create_service_app
from shared.settings import CommonSettings

SETTINGS = CommonSettings(service_name="refunds", jwt_secret="s" * 64)


@pytest.fixture
def json_log():
    """Route the root logger to a buffer as configure_logging does; restore afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging("refunds", "DEBUG", stream=buffer)

    def lines() -> list[dict]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield lines
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_redact_walks_structures():
    assert redact("mail jane.doe+x@mail.example.co.uk now") == f"mail {REDACTED} now"
    assert redact({"to": ["a@b.io", 3], "n": ("c@d.org",)}) == {"to": [REDACTED, 3], "n": (REDACTED,)}
    assert redact("no address @ here") == "no address @ here"


def test_log_lines_are_json_with_service_level_and_utc_time(json_log):
    logging.getLogger("refunds.test").info("refund %s issued", "rf-1", extra={"amount": 1999})
    [line] = json_log()
    assert line["message"] == "refund rf-1 issued"
    assert (line["level"], line["logger"], line["service"], line["amount"]) == ("INFO", "refunds.test", "refunds", 1999)
    assert line["timestamp"].endswith("+00:00") and "request_id" in line


def test_emails_are_redacted_from_messages_args_extras_and_tracebacks(json_log):
    log = logging.getLogger("refunds.test")
    log.warning("buyer jane@example.com complained", extra={"to": "jane@example.com", "ctx": {"cc": ["x@y.io"]}})
    log.info("sent to %s", "bob@example.org")
    try:
        raise ValueError("invalid address jane@example.com")
    except ValueError:
        log.exception("failed")
    text = json.dumps(json_log())
    assert "@example" not in text and "x@y.io" not in text
    first, second, third = json_log()
    assert first["message"] == f"buyer {REDACTED} complained"
    assert first["to"] == REDACTED and first["ctx"] == {"cc": [REDACTED]}
    assert second["message"] == f"sent to {REDACTED}"
    assert REDACTED in third["exc_info"]


def test_filter_adds_request_id_and_service():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert RedactingFilter("metrics").filter(record)
    assert record.service == "metrics" and record.request_id is None


router = APIRouter()


@router.get("/v1/refunds/{refund_id}")
async def get_refund(refund_id: str) -> dict:
    return {"refund_id": refund_id}


async def test_metrics_count_by_route_template_not_raw_path():
    app = create_service_app(SETTINGS, title="t", routers=[router], configure_logs=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://refunds") as client:
        await client.get("/v1/refunds/rf-unique-1")
        await client.get("/v1/refunds/rf-unique-2")
        text = (await client.get("/metrics")).text
    assert "rf-unique" not in text
    line = next(
        row
        for row in text.splitlines()
        if row.startswith("http_requests_total") and 'route="/v1/refunds/{refund_id}"' in row
    )
    assert 'method="GET"' in line and 'status="200"' in line and float(line.rsplit(" ", 1)[1]) >= 2
    assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/refunds/{refund_id}"' in text


async def test_readiness_follows_start_up_and_checks():
    state = {"amqp": True}

    async def mongo_ok() -> bool:
        return True

    async def broken() -> bool:
        raise ConnectionError("down")

    @asynccontextmanager
    async def lifespan(app):
        add_readiness_check(app, "amqp", lambda: state["amqp"])
        yield

    app = create_service_app(
        SETTINGS, title="t", lifespan=lifespan, readiness_checks={"mongodb": mongo_ok}, configure_logs=False
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://refunds") as client:
        assert (await client.get("/readyz")).status_code == 503  # lifespan not run yet
        async with LifespanManager(app):
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            response = await client.get("/readyz")
            assert response.status_code == 200
            assert response.json()["checks"] == {"mongodb": "ok", "amqp": "ok"}
            state["amqp"] = False
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["checks"] == {"mongodb": "ok", "amqp": "failing"}
            add_readiness_check(app, "amqp", broken)
            assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/readyz")).status_code == 503  # shut down
