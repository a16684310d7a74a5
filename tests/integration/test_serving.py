"""How a service's HTTP server is run (`shared.service.serve`): its idle keep-alive connections
outlast clients' own idle limits, so a client reusing one never meets a connection the server is
closing at that moment (seen as httpx.ReadError in the two-replica e2e test with uvicorn's 5 s)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from shared.service import server_options
from shared.settings import CommonSettings
from tests.ports import free_port

pytestmark = pytest.mark.integration


def test_idle_connections_outlast_httpx_and_load_balancers():
    options = server_options(CommonSettings())
    config = uvicorn.Config(FastAPI(), **options)
    assert config.timeout_keep_alive == 75
    assert config.timeout_keep_alive > httpx.Limits().keepalive_expiry  # httpx's default (5 s)
    assert config.timeout_keep_alive > 60  # AWS ALB's idle timeout
    assert (options["host"], options["port"], options["log_config"]) == ("127.0.0.1", 8000, None)


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HTTP_KEEP_ALIVE_S", "120")
    assert server_options(CommonSettings())["timeout_keep_alive"] == 120
    monkeypatch.setenv("HTTP_KEEP_ALIVE_S", "0")
    with pytest.raises(ValueError, match="http_keep_alive_s"):
        CommonSettings()


async def test_a_real_server_closes_an_idle_connection_after_the_setting():
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    settings = CommonSettings(port=free_port(), http_keep_alive_s=1)
    server = uvicorn.Server(uvicorn.Config(app, **server_options(settings)))
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                await asyncio.sleep(0.02)
        reader, writer = await asyncio.open_connection(settings.host, settings.port)
        writer.write(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
        answered = time.monotonic()
        async with asyncio.timeout(20):
            body = await reader.read(11)  # {"ok":true}
            assert body == b'{"ok":true}'
            assert await reader.read() == b""  # the server let the idle connection go
        # After the second asked for: not at once, and not after uvicorn's own 5 s.
        assert 0.9 <= time.monotonic() - answered < 4.5
        writer.close()
    finally:
        server.should_exit = True
        await serving
