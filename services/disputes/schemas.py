"""Bodies the disputes API accepts (strict: unknown fields and wrong types are refused) and its lists' filters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from shared.dispute_models import ClaimReason, ClaimStatus, Evidence, Note
from shared.models import Id
from shared.money import Money

RequiredNote = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StrictEvidence(Evidence):
    """Evidence as a request carries it: unknown fields refused (the contract model ignores them)."""

    model_config = ConfigDict(extra="forbid")


class ClaimRequest(Body):
    order_id: Id
    reason: ClaimReason
    amount: Money = Field(description="What the buyer asks for, in the order's currency: at most what is refundable.")
    return_id: Id | None = Field(default=None, description="Required for RETURN_NOT_REFUNDED and RETURN_REFUSED.")
    note: Note | None = None


class RespondBody(Body):
    kind: Literal["refund", "contest"]
    amount: Money | None = Field(default=None, description="`refund`: what the seller refunds (full or partial).")
    evidence: StrictEvidence | None = Field(default=None, description="`contest`: at least one field set.")
    note: Note | None = None


class WithdrawBody(Body):
    note: Note | None = None


class DecideBody(Body):
    outcome: Literal["grant", "deny"]
    amount: Money | None = Field(
        default=None, description="`grant`: what the buyer is paid (default the claim's amount; at most refundable)."
    )
    note: RequiredNote = Field(description="Why: shown to the buyer and the seller.")


class FeedbackRequest(Body):
    order_id: Id
    rating: StrictInt = Field(ge=1, le=5)
    comment: Note | None = None


class RemoveFeedbackBody(Body):
    note: RequiredNote


@dataclass(frozen=True)
class ClaimFilter:
    order_id: str | None = None
    buyer_id: str | None = None
    seller_id: str | None = None
    status: ClaimStatus | None = None


@dataclass(frozen=True)
class FeedbackFilter:
    order_id: str | None = None
    buyer_id: str | None = None
    seller_id: str | None = None
