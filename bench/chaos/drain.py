"""Waiting, after the last fault, until every effect owed has happened (or the time is up)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from bench import verify
from bench.chaos.driver import ChaosOutcome
from bench.load import EXPECTED_TEMPLATES, Tokens
from bench.stack import StackConfig

TEMPLATES_BY_STEP = {
    1: ("buyer/return_requested", "seller/new_request"),
    2: ("buyer/return_authorized",),
    3: ("seller/return_shipped",),
    4: ("buyer/item_received", "seller/item_received", "buyer/refunded"),
}


def expected_templates(acked: int) -> set[str]:
    out: set[str] = set()
    for step in range(1, acked + 1):
        out.update(TEMPLATES_BY_STEP[step])
    return out


assert set().union(*TEMPLATES_BY_STEP.values()) == EXPECTED_TEMPLATES


async def drain(
    config: StackConfig,
    tokens: Tokens,
    outcomes: list[ChaosOutcome],
    observer_dir: Path,
    *,
    timeout: float,
    quiet_timeout: float,
) -> tuple[float | None, str]:
    """Wait until every effect is in and nothing is left to do: the witness saw each received
    return refunded, the sink got every email owed, the notification log is all sent, the refunds
    of those returns are all issued, and no message waits in an inbox or retry queue. Returns when
    that first held (epoch s), or None and why not (no progress for `quiet_timeout` s, or `timeout`)."""
    received = {o.return_id for o in outcomes if o.acked >= 4}
    owed = sum(len(expected_templates(o.acked)) for o in outcomes if o.return_id)
    deadline = time.monotonic() + timeout
    last_change, last_sizes = time.monotonic(), None
    reason = "timeout"
    async with httpx.AsyncClient(timeout=60) as client:
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            events = verify.read_jsonl(observer_dir / "events.jsonl")
            mails = verify.read_jsonl(observer_dir / "mails.jsonl")
            sizes = (len(events), len(mails))
            if sizes != last_sizes:
                last_sizes, last_change = sizes, time.monotonic()
            refunded = {e["subject"] for e in events if e["type"] == "return.refunded"}
            mailed = {m["notification_id"] for m in mails}
            if received <= refunded and len(mailed) >= owed:
                try:
                    if await _settled(config, tokens, client, owed):
                        return time.time(), "drained"
                except (httpx.HTTPError, OSError, RuntimeError):
                    pass
            if time.monotonic() - last_change > quiet_timeout:
                reason = f"no new event or email for {quiet_timeout:.0f} s"
                break
    return None, reason


async def _settled(config: StackConfig, tokens: Tokens, client: httpx.AsyncClient, owed: int) -> bool:
    log_ = await verify.list_all(
        client, config.base_url("notifications") + "/v1/notifications", tokens("agent", "bench", "notifications")
    )
    if len(log_) < owed or any(n.get("status") != "sent" for n in log_):
        return False
    depths = await verify.queue_depths(config)
    return not any(v for k, v in depths.items() if not k.endswith(".dead"))
