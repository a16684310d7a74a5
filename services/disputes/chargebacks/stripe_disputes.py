"""Stripe through its official SDK: verify dispute webhooks, submit a chargeback's evidence (stripe-mock in tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import stripe

from shared.dispute_models import Evidence
from shared.stripe_calls import GatewayDeclined as GatewayDeclined  # re-exported with the calls
from shared.stripe_calls import GatewayUnavailable as GatewayUnavailable
from shared.stripe_calls import StripeCaller

if TYPE_CHECKING:
    from stripe.params import DisputeUpdateParams, DisputeUpdateParamsEvidence

# Gateway statuses of a dispute that still takes evidence.
_OPEN = frozenset({"needs_response", "warning_needs_response"})


class BadDelivery(Exception):
    """A webhook delivery refused before anything is read from it; `reason` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """A verified webhook delivery: the Stripe event, and when its signature was made."""

    event_id: str
    event_type: str
    signed_at: int  # the signature's `t`: with the event id, what makes a delivery unique
    object: dict[str, Any]  # `data.object`: the dispute, for the dispute events


def _signed_at(header: str) -> int:
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t":
            return int(value)
    raise ValueError("no timestamp")


def verify(payload: bytes, header: str | None, secret: str, tolerance_s: int) -> Delivery:
    """The delivery, if `header` (Stripe-Signature) signs `payload` with `secret` no longer than
    `tolerance_s` ago (the SDK's check, on the wall clock: it is the transport's freshness, not
    business time); else BadDelivery with the reason: unsigned, bad_signature, too_old, malformed."""
    if not header:
        raise BadDelivery("unsigned", "The delivery has no Stripe-Signature header.")
    try:
        stripe.Webhook.construct_event(payload, header, secret, tolerance=tolerance_s)
    except stripe.SignatureVerificationError:
        try:  # the same check without the age: a good signature made too long ago
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=0)
        except stripe.SignatureVerificationError:
            raise BadDelivery("bad_signature", "The Stripe-Signature does not sign this body.") from None
        raise BadDelivery("too_old", f"The delivery was signed more than {tolerance_s} s ago.") from None
    except (ValueError, TypeError, AttributeError):  # signed, but not a JSON object (or a thin v2 notification)
        raise BadDelivery("malformed", "The body is not a Stripe event.") from None
    body = json.loads(payload)
    data = body.get("data") if isinstance(body, dict) else None
    event_id, event_type = body.get("id"), body.get("type")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(event_id, str) or not isinstance(event_type, str) or not isinstance(obj, dict):
        raise BadDelivery("malformed", "The body is not a Stripe event with data.object.")
    return Delivery(event_id=event_id, event_type=event_type, signed_at=_signed_at(header), object=obj)


def stripe_evidence(evidence: Evidence) -> DisputeUpdateParamsEvidence:
    """Our evidence in Stripe's fields; a refund reference has none of its own, so it goes in the text."""
    params: DisputeUpdateParamsEvidence = {}
    if evidence.carrier:
        params["shipping_carrier"] = evidence.carrier
    if evidence.tracking_number:
        params["shipping_tracking_number"] = evidence.tracking_number
    text = [
        part for part in (evidence.text, evidence.refund_reference and f"Refund: {evidence.refund_reference}") if part
    ]
    if text:
        params["uncategorized_text"] = "\n".join(text)
    return params


class StripeDisputes(StripeCaller):
    name = "stripe"

    async def submit(self, dispute_id: str, evidence: Evidence, *, key: str, chargeback_id: str) -> dict[str, Any]:
        """Send the evidence and submit it (`submit=True`); what the gateway answered (id, status).

        The idempotency key makes a retry after a crash the same request. Past the gateway's
        memory of keys, a repeat is refused because the dispute took evidence already: then the
        dispute is read, and evidence it holds counts as this submission."""
        params: DisputeUpdateParams = {
            "evidence": stripe_evidence(evidence),
            "submit": True,
            "metadata": {"chargeback_id": chargeback_id},
        }
        options: stripe.RequestOptions = {"idempotency_key": key}
        try:
            dispute = await self._call(self._client.v1.disputes.update_async(dispute_id, params, options))
        except GatewayDeclined:
            dispute = await self._call(self._client.v1.disputes.retrieve_async(dispute_id))
            if dispute.status in _OPEN or not dispute.evidence_details.submission_count:
                raise
        # What the gateway now holds as our text: kept with the chargeback, as its receipt.
        text = getattr(getattr(dispute, "evidence", None), "uncategorized_text", None)
        return {"id": dispute.id, "status": dispute.status, "evidence_text": text}
