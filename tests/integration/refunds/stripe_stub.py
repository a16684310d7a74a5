"""A tiny Stripe look-alike over real HTTP that records every call and honours idempotency keys.

stripe-mock answers every request alike and ignores `Idempotency-Key`, so it cannot show that a
retried payment is paid once. This stub pays once per key, as Stripe does, and can be told to be
down (503) or to hold its answer after accepting a refund (to kill the caller in between).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    idempotency_key: str | None
    params: dict[str, str]


class StripeStub:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.refunds: dict[str, dict[str, Any]] = {}  # idempotency key -> the refund it paid
        self.mode = "ok"  # "ok" | "unavailable" | "hold"
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StripeStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def posts(self) -> list[Call]:
        return [call for call in self.calls if call.method == "POST"]

    def paid_total(self) -> int:
        return sum(refund["amount"] for refund in self.refunds.values())

    def _pay(self, key: str | None, params: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            if key in self.refunds:
                return self.refunds[key]
            refund = {
                "id": f"re_stub_{len(self.refunds) + 1}",
                "object": "refund",
                "status": "succeeded",
                "amount": int(params["amount"]),
                "currency": "usd",
                "payment_intent": params.get("payment_intent"),
                "charge": params.get("charge"),
                "metadata": {k[9:-1]: v for k, v in params.items() if k.startswith("metadata[")},
            }
            self.refunds[key or refund["id"]] = refund
            return refund

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Request-Id", "req_stub")
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                params = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                key = self.headers.get("Idempotency-Key")
                stub.calls.append(Call("POST", urlparse(self.path).path, key, params))
                if stub.mode == "unavailable":
                    return self._answer(503, {"error": {"type": "api_error", "message": "stub is down"}})
                refund = stub._pay(key, params)
                if stub.mode == "hold":  # accepted and paid, but the caller hears nothing yet
                    stub.release.wait(30)
                self._answer(200, refund)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                stub.calls.append(Call("GET", url.path, None, params))
                if stub.mode == "unavailable":
                    return self._answer(503, {"error": {"type": "api_error", "message": "stub is down"}})
                wanted = params.get("payment_intent")
                data = [r for r in stub.refunds.values() if wanted is None or r["payment_intent"] == wanted]
                self._answer(200, {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"})

        return Handler
