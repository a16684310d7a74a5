"""With OTEL_EXPORTER_OTLP_ENDPOINT set, a service records its requests and exports them over OTLP/HTTP
(here to a real HTTP receiver in this process), in the caller's trace."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest
from asgi_lifespan import LifespanManager

from shared import tracing
from shared.service import create_service_app
from shared.settings import CommonSettings
from tests.integration.spans import TRACE_ID, TRACEPARENT

pytestmark = pytest.mark.integration


class Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"] or 0))
        Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        tracing.disable()  # flushes what is left to the receiver, still up
        server.shutdown()


async def test_the_exporter_is_on_when_an_endpoint_is_configured(collector: str) -> None:
    assert not tracing.enabled()
    settings = CommonSettings(service_name="traced", jwt_secret="x" * 40, otel_exporter_otlp_endpoint=collector)
    app = create_service_app(settings, title="traced", configure_logs=False)
    assert tracing.enabled()
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        response = await client.get("/v1/marketplaces", headers={"traceparent": TRACEPARENT})
    assert response.status_code in (200, 401)
    assert tracing._provider is not None and tracing._provider.force_flush(10_000)
    bodies = [body for path, body in Collector.received if path == "/v1/traces"]
    assert any(bytes.fromhex(TRACE_ID) in body for body in bodies)  # protobuf: the trace id's 16 bytes
