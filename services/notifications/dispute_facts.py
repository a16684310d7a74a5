"""The facts a claim or chargeback email states, formatted for its reader (like facts.py for returns).

`reference` is what the footer names the email as being about (the claim or chargeback id).
"""

from __future__ import annotations

from typing import Any

from services.notifications.facts import Reader
from shared.dispute_models import Chargeback, ChargebackCategory, Claim


def claim_facts(claim: Claim, reader: Reader) -> dict[str, Any]:
    decision, payment = claim.decision, claim.payment
    # What the buyer gets: the refund asked of the refunds service, else the decided, else the asked amount.
    granted = (payment.amount if payment else None) or (decision.amount if decision else None) or claim.amount
    return {
        "name": reader.party.name,
        "reference": claim.claim_id,
        "claim_id": claim.claim_id,
        "order_id": claim.order_id,
        "return_id": claim.return_id or "",
        "reason": reader.label("claim_reason", claim.reason),
        "amount": reader.money(claim.amount),
        "note": claim.note or "",
        "filed_at": reader.when(claim.filed_at),
        "respond_by": reader.when(claim.respond_by),
        "respond_by_day": reader.day(claim.respond_by),
        # Set on every granted or denied claim; the defaults keep any other event renderable.
        "decision": {
            "automatic": bool(decision and decision.automatic),
            "amount": reader.money(granted),
            "funded_by_seller": decision is None or decision.funded_by == "seller",
            # An agent's words; the platform's own note on an automatic grant is English boilerplate
            # the templates already say in the reader's language.
            "note": (decision.note if decision and not decision.automatic else None) or "",
        },
        "closure": None if claim.closure is None else {"code": claim.closure.code, "at": reader.when(claim.closure.at)},
    }


def chargeback_facts(chargeback: Chargeback, reader: Reader) -> dict[str, Any]:
    evidence = chargeback.evidence
    return {
        "name": reader.party.name,
        "reference": chargeback.chargeback_id,
        "chargeback_id": chargeback.chargeback_id,
        "order_id": chargeback.order_id or "",
        "amount": reader.money(chargeback.amount),
        "reason": reader.label("chargeback_reason", chargeback.reason),
        "service": chargeback.category == ChargebackCategory.SERVICE,
        "evidence_due_by": reader.when(chargeback.evidence_due_by),
        "evidence_due_day": reader.day(chargeback.evidence_due_by),
        "automatic": chargeback.automatic,
        "evidence": None
        if evidence is None
        else {"refund_reference": evidence.refund_reference or "", "text": evidence.text or ""},
        "closed_at": reader.when(chargeback.closed_at),
    }
