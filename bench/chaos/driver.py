"""The load of a fault run: lifecycles paced so the faults land mid-load, resilient to them."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bench.chaos.kinds import STATUS_RANK
from bench.load import TRANSPORT_ERRORS, Driver, Outcome, Plan, Reply, Tokens


@dataclass
class ChaosOutcome(Outcome):
    acked: int = 0  # the furthest step the server acknowledged: 1 created, 2 authorized, 3 shipped, 4 received
    lost_ack: str | None = None  # an acknowledged write the server no longer knew
    http_retries: int = 0  # calls repeated after a connection error, a timeout or a 5xx


class ChaosDriver(Driver):
    """The bench's lifecycle, as a careful client drives it through faults: every call is repeated
    after a connection error, a timeout or a 5xx (create with its Idempotency-Key; a transition that
    answers 409 is looked up, since an earlier attempt may have gone through). Lifecycles start at
    `rate` per second, so the load lasts N / rate seconds whatever the faults do."""

    def __init__(
        self, base_urls: dict[str, str], tokens: Tokens, concurrency: int, *, rate: float, step_timeout: float = 300.0
    ) -> None:
        super().__init__(base_urls, tokens, concurrency)
        self.rate, self.step_timeout = rate, step_timeout
        self.t0 = 0.0
        self.agent = tokens("agent", "bench", "returns")

    async def attempt(
        self,
        service: str,
        method: str,
        path: str,
        label: str,
        *,
        headers: dict[str, str],
        json: Any = None,
        out: ChaosOutcome,
    ) -> Reply | None:
        try:
            response = await self.call(service, method, path, label, headers=headers, json=json)
        except TRANSPORT_ERRORS:  # refused, reset, timed out: the service is down or frozen
            out.http_retries += 1
            await asyncio.sleep(0.5)
            return None
        if response.status_code >= 500:
            out.http_retries += 1
            await asyncio.sleep(0.5)
            return None
        return response

    async def status(self, return_id: str, out: ChaosOutcome) -> str | None:
        """The return's status now; "" when the server no longer has it."""
        deadline = time.monotonic() + self.step_timeout
        while time.monotonic() < deadline:
            r = await self.attempt(
                "returns", "GET", f"/v1/returns/{return_id}", "GET /v1/returns/{id}", headers=self.agent, out=out
            )
            if r is not None:
                if r.status_code == 404:
                    return ""
                if r.status_code == 200:
                    return r.json()["status"]
        return None

    async def lifecycle(self, plan: Plan) -> ChaosOutcome:
        delay = self.t0 + plan.index / self.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        out = ChaosOutcome(plan)
        buyer = self.tokens("buyer", plan.buyer_id, "returns")
        seller = self.tokens("seller", plan.seller_id, "returns")
        try:
            body = {"order_id": plan.order_id, "lines": [{"line_id": "L1", "quantity": 1, "reason_code": plan.reason}]}
            headers = buyer | {"Idempotency-Key": f"bench-{plan.run_id}-{plan.index}"}
            deadline = time.monotonic() + self.step_timeout
            while True:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"create: no answer in {self.step_timeout:.0f} s")
                r = await self.attempt(
                    "returns", "POST", "/v1/returns", "POST /v1/returns", headers=headers, json=body, out=out
                )
                if r is None:
                    continue
                if r.status_code == 201:
                    break
                if (r.status_code == 422 and "no delivered order" in r.text) or r.status_code == 409:
                    out.retries += 1  # the order not in yet, or the same key still in progress
                    await asyncio.sleep(0.2)
                    continue
                raise RuntimeError(f"create: HTTP {r.status_code}: {r.text[:300]}")
            out.return_id = r.json()["return_id"]
            out.acked = 1
            steps = [
                ("authorize", seller, {}, 2),
                ("ship", buyer, {"carrier": "UPS", "tracking_number": f"1Z{plan.index:08d}"}, 3),
                ("receive", seller, {"lines": [{"line_id": "L1", "quantity": 1, "condition": plan.condition}]}, 4),
            ]
            for action, who, payload, rank in steps:
                if action == "receive":
                    out.receive_started = time.time()
                if not await self.transition(out, action, who, payload, rank):
                    return out
            out.receive_done = time.time()
        except Exception as exc:  # noqa: BLE001 - reported per lifecycle, the run goes on
            out.error = f"{type(exc).__name__}: {exc}"[:500]
        return out

    async def transition(
        self, out: ChaosOutcome, action: str, who: dict[str, str], payload: dict[str, Any], rank: int
    ) -> bool:
        rid = out.return_id
        deadline = time.monotonic() + self.step_timeout
        conflicts = 0
        while time.monotonic() < deadline:
            r = await self.attempt(
                "returns",
                "POST",
                f"/v1/returns/{rid}/{action}",
                f"POST /v1/returns/{{id}}/{action}",
                headers=who,
                json=payload,
                out=out,
            )
            if r is None:
                continue
            if r.status_code == 200:
                out.acked = rank
                return True
            if r.status_code in (404, 409):
                status = await self.status(rid, out)
                if status == "":
                    out.lost_ack = f"{action}: the return is gone although its creation was acknowledged"
                    out.error = out.lost_ack
                    return False
                current = STATUS_RANK.get(status or "", 0)
                if current >= rank:  # an earlier attempt went through
                    out.acked = rank
                    return True
                if current < out.acked:
                    out.lost_ack = f"{action}: the return is {status} although step {out.acked} was acknowledged"
                    out.error = out.lost_ack
                    return False
                conflicts += 1
                if conflicts > 20:
                    raise RuntimeError(f"{action}: HTTP {r.status_code} and the return is {status}: {r.text[:200]}")
                await asyncio.sleep(0.2)
                continue
            raise RuntimeError(f"{action}: HTTP {r.status_code}: {r.text[:300]}")
        raise RuntimeError(f"{action}: no answer in {self.step_timeout:.0f} s")

    async def run(self, plans: list[Plan], progress=None) -> list[Outcome]:
        self.t0 = time.monotonic()
        return await super().run(plans, progress)
