"""The claim state machine (SPEC §11): every transition from every status, and what each records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from services.disputes import domain
from services.disputes.domain import ALLOWED, PLATFORM, ClaimProblem, IllegalTransition
from services.disputes.schemas import DecideBody, RespondBody
from shared.dispute_models import Claim, ClaimStatus
from shared.money import Money
from tests.unit.disputes.builders import AGENT, BUYER, NOW, SELLER, in_status, open_claim, usd

S = ClaimStatus
LATER = NOW + timedelta(hours=1)
PAST_DEADLINE = NOW + timedelta(hours=72)


def refund_body(amount: int | None = 1500, **changes) -> RespondBody:
    return RespondBody.model_validate({"kind": "refund", "amount": None if amount is None else usd(amount)} | changes)


def contest_body(**changes) -> RespondBody:
    evidence = {"carrier": "UPS", "tracking_number": "1Z999"}
    return RespondBody.model_validate({"kind": "contest", "evidence": evidence} | changes)


def decide_body(outcome: str = "grant", **changes) -> DecideBody:
    return DecideBody.model_validate({"outcome": outcome, "note": "Checked the tracking"} | changes)


def fields(raised: pytest.ExceptionInfo[ClaimProblem]) -> list[str]:
    return [p.field for p in raised.value.problems]


# Every action, as the pure function is called with a claim (run at a time past its deadline).
ACTIONS: dict[str, Callable[[Claim], Claim | None]] = {
    "respond": lambda c: domain.respond(c, contest_body(), SELLER, LATER),
    "withdraw": lambda c: domain.withdraw(c, BUYER, LATER),
    "decide": lambda c: domain.decide(c, decide_body("deny"), AGENT, LATER),
    "remind": lambda c: domain.remind(c, LATER),
    "grant_late": lambda c: domain.grant_late(c, PAST_DEADLINE),
    "close": lambda c: domain.close_paid(c, f"rf_{c.claim_id}", c.amount, LATER, LATER),
}


@pytest.mark.parametrize("status", list(ClaimStatus))
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_from_every_status(action, status):
    claim = in_status(status)
    if status in ALLOWED[action]:
        after = ACTIONS[action](claim)
        assert after is not None and after.version == claim.version + 1 and after.updated_at > claim.updated_at
        assert len(after.timeline) == len(claim.timeline) + 1 and after.timeline[-1].status == after.status.value
    elif action == "close" and status == S.CLOSED:
        assert ACTIONS[action](claim) is None  # closed by this refund already: a redelivery
    else:
        with pytest.raises(IllegalTransition) as raised:
            ACTIONS[action](claim)
        assert raised.value.status == status


def test_allowed_covers_the_design():
    assert ALLOWED == {
        "respond": {S.OPEN},
        "withdraw": {S.OPEN, S.CONTESTED},
        "decide": {S.CONTESTED},
        "remind": {S.OPEN},
        "grant_late": {S.OPEN},
        "close": {S.PAYING},
    }


# ---- the seller's response ---------------------------------------------------------------


@pytest.mark.parametrize("amount", [1, 1000, 1500])
def test_seller_refunds_full_or_partial(amount):
    after = domain.respond(open_claim(1500), refund_body(amount, note="Sorry"), SELLER, LATER)
    assert after.status == S.PAYING
    assert after.seller_response is not None and after.seller_response.kind == "refund"
    assert after.seller_response.amount == Money(amount=amount, currency="USD") and after.seller_response.at == LATER
    assert after.payment is not None and after.payment.refund_id == "rf_clm_1"
    assert after.payment.amount.amount == amount and after.payment.paid is None
    assert after.decision is None
    step = after.timeline[-1]
    assert (step.action, step.actor, step.at, step.note) == ("refund", SELLER, LATER, "Sorry")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (refund_body(None), "amount"),
        (refund_body(0), "amount.amount"),
        (refund_body(1501), "amount.amount"),
        (
            RespondBody.model_validate({"kind": "refund", "amount": {"amount": 10, "currency": "EUR"}}),
            "amount.currency",
        ),
        (refund_body(100, evidence={"text": "x"}), "evidence"),
        (RespondBody.model_validate({"kind": "contest"}), "evidence"),
        (RespondBody.model_validate({"kind": "contest", "evidence": {}}), "evidence"),
        (contest_body(amount=usd(10)), "amount"),
    ],
)
def test_bad_responses_name_the_field(body, field):
    claim = open_claim(1500)
    with pytest.raises(ClaimProblem) as raised:
        domain.respond(claim, body, SELLER, LATER)
    assert field in fields(raised)
    assert claim.status == S.OPEN and claim.version == 1  # nothing changed


@pytest.mark.parametrize(
    "evidence",
    [{"carrier": "UPS", "tracking_number": "1Z"}, {"refund_reference": "re_123"}, {"text": "Delivered to the porch"}],
)
def test_seller_contests_with_evidence(evidence):
    after = domain.respond(open_claim(), contest_body(evidence=evidence, note="See tracking"), SELLER, LATER)
    assert after.status == S.CONTESTED and after.payment is None
    assert after.seller_response is not None and after.seller_response.kind == "contest"
    assert after.seller_response.evidence is not None
    assert after.seller_response.evidence.model_dump(exclude_none=True) == evidence
    assert after.timeline[-1].action == "contest" and after.timeline[-1].note == "See tracking"


@pytest.mark.parametrize("body", [refund_body(), contest_body()], ids=["refund", "contest"])
def test_the_seller_responds_until_the_deadline_then_the_platform_grants(body):
    claim = open_claim(1500)
    assert domain.respond(claim, body, SELLER, claim.respond_by - timedelta(milliseconds=1)).status != S.OPEN
    with pytest.raises(IllegalTransition, match="deadline has passed") as raised:
        domain.respond(claim, body, SELLER, claim.respond_by)
    assert raised.value.status == S.OPEN and claim.version == 1
    assert domain.grant_late(claim, claim.respond_by).status == S.PAYING


# ---- withdraw, decide ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.OPEN, S.CONTESTED])
def test_buyer_withdraws(status):
    after = domain.withdraw(in_status(status), BUYER, LATER, "Arrived after all")
    assert after.status == S.WITHDRAWN and after.timeline[-1].action == "withdraw"
    assert after.timeline[-1].note == "Arrived after all" and after.timeline[-1].actor == BUYER


def contested() -> Claim:
    return domain.respond(open_claim(1500), contest_body(), SELLER, LATER)


def test_agent_grants_the_claims_amount_by_default():
    after = domain.decide(contested(), decide_body(), AGENT, LATER)
    assert after.status == S.PAYING
    assert after.decision is not None and after.decision.outcome == "granted" and not after.decision.automatic
    assert after.decision.amount == Money(amount=1500, currency="USD") and after.decision.actor == AGENT
    assert after.decision.note == "Checked the tracking" and after.decision.funded_by == "seller"
    assert after.payment is not None and after.payment.refund_id == "rf_clm_1" and after.payment.amount.amount == 1500
    assert after.timeline[-1].action == "grant" and after.timeline[-1].note == "Checked the tracking"


def test_agent_may_grant_the_amount_asked_or_less():
    after = domain.decide(contested(), decide_body(amount=usd(1000)), AGENT, LATER)
    assert after.payment is not None and after.payment.amount.amount == 1000
    assert domain.decide(contested(), decide_body(amount=usd(1500)), AGENT, LATER).status == S.PAYING
    with pytest.raises(ClaimProblem) as raised:  # the claim asks for 1500
        domain.decide(contested(), decide_body(amount=usd(1501)), AGENT, LATER)
    assert fields(raised) == ["amount.amount"]
    with pytest.raises(ClaimProblem) as raised:
        domain.decide(contested(), decide_body(amount={"amount": 5, "currency": "JPY"}), AGENT, LATER)
    assert fields(raised) == ["amount.currency"]


def test_agent_denies():
    after = domain.decide(contested(), decide_body("deny"), AGENT, LATER)
    assert after.status == S.DENIED and after.payment is None
    assert after.decision is not None and after.decision.outcome == "denied" and after.decision.amount is None
    assert after.timeline[-1].action == "deny"
    with pytest.raises(ClaimProblem) as raised:
        domain.decide(contested(), decide_body("deny", amount=usd(5)), AGENT, LATER)
    assert fields(raised) == ["amount"]


def test_a_decision_needs_a_note():
    with pytest.raises(ValueError, match="note"):
        DecideBody.model_validate({"outcome": "deny"})
    with pytest.raises(ValueError, match="note"):
        DecideBody.model_validate({"outcome": "deny", "note": ""})


# ---- the deadline --------------------------------------------------------------------------


def test_reminder_once():
    after = domain.remind(open_claim(), LATER)
    assert after.reminded and after.status == S.OPEN and after.version == 2
    assert after.timeline[-1].action == "remind" and after.timeline[-1].actor == PLATFORM
    with pytest.raises(IllegalTransition):
        domain.remind(after, LATER)


def test_grant_at_the_deadline_by_the_platform_funded_by_the_seller():
    claim = open_claim(1500)
    with pytest.raises(IllegalTransition):
        domain.grant_late(claim, claim.respond_by - timedelta(milliseconds=1))
    after = domain.grant_late(claim, claim.respond_by)
    assert after.status == S.PAYING
    decision = after.decision
    assert decision is not None and decision.outcome == "granted" and decision.automatic
    assert decision.funded_by == "seller" and decision.actor == PLATFORM and decision.amount == claim.amount
    assert PLATFORM.model_dump() == {"role": "platform", "id": "disputes"}
    assert after.payment is not None and after.payment.refund_id == "rf_clm_1" and after.payment.amount == claim.amount
    assert after.timeline[-1].actor == PLATFORM and after.timeline[-1].action == "grant"


# ---- paid, or nothing left to pay ----------------------------------------------------------


def granted() -> Claim:
    return domain.grant_late(open_claim(1500), PAST_DEADLINE)


def test_closed_paid_by_its_refund_once():
    issued: datetime = PAST_DEADLINE + timedelta(minutes=1)
    after = domain.close_paid(granted(), "rf_clm_1", Money(amount=1200, currency="USD"), issued, LATER)
    assert after is not None and after.status == S.CLOSED
    assert after.closure is not None and after.closure.code == "paid"
    assert after.payment is not None and after.payment.paid == Money(amount=1200, currency="USD")
    assert after.payment.issued_at == issued and after.payment.amount.amount == 1500
    assert domain.close_paid(after, "rf_clm_1", Money(amount=1200, currency="USD"), issued, LATER) is None
    assert domain.close_already_refunded(after, "rf_clm_1", LATER) is None


def test_closed_already_refunded_once():
    after = domain.close_already_refunded(granted(), "rf_clm_1", LATER)
    assert after is not None and after.status == S.CLOSED
    assert after.closure is not None and after.closure.code == "already_refunded"
    assert after.payment is not None and after.payment.paid is None
    assert domain.close_already_refunded(after, "rf_clm_1", LATER) is None


def test_another_refund_closes_nothing():
    with pytest.raises(IllegalTransition):
        domain.close_paid(granted(), "rf_other", Money(amount=1, currency="USD"), LATER, LATER)
    with pytest.raises(IllegalTransition):
        domain.close_already_refunded(open_claim(), "rf_clm_1", LATER)  # no payment yet
