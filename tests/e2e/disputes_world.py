"""What the outside world does with the disputes service: claims, feedback, and Stripe's webhooks.

Stripe's side is played as Stripe plays it: a `charge.dispute.*` event JSON, signed with the
endpoint's secret (`Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of "t.body">`) and POSTed
to `/v1/webhooks/stripe`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx

from tests.e2e.harness import Stack, eventually
from tests.e2e.world import Party, ok, usd


async def file_claim(
    buyer: Party, order_id: str, reason: str, amount: int, *, return_id: str | None = None, note: str = ""
) -> httpx.Response:
    body: dict[str, Any] = {"order_id": order_id, "reason": reason, "amount": usd(amount), "note": note or reason}
    if return_id:
        body["return_id"] = return_id
    return await buyer.call(
        "disputes", "POST", "/v1/claims", json=body, headers={"Idempotency-Key": f"claim-{uuid.uuid4().hex}"}
    )


async def get_claim(party: Party, claim_id: str) -> dict[str, Any]:
    return ok(await party.call("disputes", "GET", f"/v1/claims/{claim_id}"), 200)


async def claim_act(party: Party, claim_id: str, action: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return await party.call("disputes", "POST", f"/v1/claims/{claim_id}/{action}", json=body or {})


async def claim_in(party: Party, claim_id: str, status: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        claim = await get_claim(party, claim_id)
        return claim if claim["status"] == status else None

    return await eventually(reached, what=f"claim {claim_id} {status}")


async def disputes_know(agent: Party, order_id: str, *, refunded: int | None = None) -> None:
    """Wait until the disputes service has taken in the order (and, optionally, refunds of that total):
    a claim filed before then is refused as about an unknown order."""

    async def known() -> bool:
        probe = await agent.call("disputes", "GET", "/v1/claims", params={"order_id": order_id})
        return probe.status_code == 200

    await eventually(known, what=f"disputes API up for {order_id}")


def sign(payload: bytes, secret: str, at: int | None = None) -> str:
    timestamp = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def dispute_event(
    event_type: str, dispute_id: str, payment_intent: str, amount: int, *, reason: str, status: str
) -> dict[str, Any]:
    """A Stripe `charge.dispute.*` event as Stripe sends it (the fields the platform reads, and more)."""
    created = int(time.time())
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "livemode": False,
        "type": event_type,
        "data": {
            "object": {
                "id": dispute_id,
                "object": "dispute",
                "amount": amount,
                "currency": "usd",
                "charge": f"ch_{uuid.uuid4().hex[:24]}",
                "payment_intent": payment_intent,
                "reason": reason,
                "status": status,
                "created": created,
                "is_charge_refundable": False,
                "livemode": False,
                "metadata": {},
                "evidence_details": {
                    "due_by": created + 14 * 86400,
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                },
            }
        },
    }


async def post_webhook(stack: Stack, event: dict[str, Any], signature: str | None = None) -> httpx.Response:
    payload = json.dumps(event).encode()
    secret = stack.env()["STRIPE_WEBHOOK_SECRET"]
    headers = {"Content-Type": "application/json", "Stripe-Signature": signature or sign(payload, secret)}
    return await stack.http("disputes").post("/v1/webhooks/stripe", content=payload, headers=headers)
