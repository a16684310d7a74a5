"""Who may file which claim when (SPEC §11): the window, one open claim per order, the amount and
each reason's preconditions, against the order's facts. Pure: no server."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from services.disputes.domain import ClaimProblem
from services.disputes.eligibility import ClaimRules, OpenClaimExists, claim_problems, file_claim, open_claim
from services.disputes.orders import ReturnFacts
from services.disputes.schemas import ClaimRequest
from shared.dispute_models import ClaimReason, ClaimStatus
from shared.models import ReturnStatus
from tests.unit.disputes.builders import BUYER, NOW, ORDERED, RULES, TOTAL, facts, request, return_facts
from tests.unit.refunds.builders import make_order, make_return

R = ClaimReason
NOT_RETURN = [R.ITEM_NOT_RECEIVED, R.NOT_AS_DESCRIBED, R.DEFECTIVE]


def fields(problems) -> list[str]:
    return [p.field for p in problems]


def overdue_return():
    return return_facts(ReturnStatus.RECEIVED, refund_due_at=NOW - timedelta(seconds=1))


# ---- the window ----------------------------------------------------------------------------


@pytest.mark.parametrize("reason", NOT_RETURN)
@pytest.mark.parametrize(
    ("after_order", "ok"),
    [
        (timedelta(days=15) - timedelta(seconds=1), False),
        (timedelta(days=15), True),
        (timedelta(days=90), True),
        (timedelta(days=90, seconds=1), False),
    ],
)
def test_window_opens_15_days_after_the_order_and_closes_at_90(reason, after_order, ok):
    problems = claim_problems(facts(), request(reason), RULES, ORDERED + after_order)
    assert fields(problems) == ([] if ok else ["order_id"])


def test_partial_refund_disputed_has_the_same_window():
    early = claim_problems(facts(refunded=100), request("PARTIAL_REFUND_DISPUTED"), RULES, ORDERED + timedelta(days=14))
    assert fields(early) == ["order_id"]
    assert claim_problems(facts(refunded=100), request("PARTIAL_REFUND_DISPUTED"), RULES, NOW) == []


def test_return_reasons_may_be_filed_at_once_but_not_after_90_days():
    at = ORDERED + timedelta(hours=1)
    ret = return_facts(ReturnStatus.RECEIVED, refund_due_at=at - timedelta(minutes=1))
    assert claim_problems(facts(ret), request("RETURN_NOT_REFUNDED", return_id="ret_1"), RULES, at) == []
    refused = return_facts(ReturnStatus.REQUESTED)
    assert claim_problems(facts(refused), request("RETURN_REFUSED", return_id="ret_1"), RULES, at) == []
    late = ORDERED + timedelta(days=91)
    assert fields(claim_problems(facts(ret), request("RETURN_NOT_REFUNDED", return_id="ret_1"), RULES, late)) == [
        "order_id"
    ]


def test_the_window_follows_the_settings():
    rules = ClaimRules(opens_after=timedelta(days=2), window=timedelta(days=10))
    assert claim_problems(facts(), request(), rules, ORDERED + timedelta(days=2)) == []
    assert fields(claim_problems(facts(), request(), rules, ORDERED + timedelta(days=11))) == ["order_id"]


# ---- the amount ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("refunded", "amount", "field"),
    [
        (0, TOTAL, None),
        (0, TOTAL + 1, "amount.amount"),
        (1000, TOTAL - 1000, None),
        (1000, TOTAL - 999, "amount.amount"),
        (TOTAL, 1, "amount.amount"),
        (TOTAL + 500, 1, "amount.amount"),  # refunded beyond what was paid: nothing is refundable
        (0, 0, "amount.amount"),
        (0, -5, "amount.amount"),
    ],
)
def test_amount_is_positive_and_at_most_what_is_still_refundable(refunded, amount, field):
    problems = claim_problems(facts(refunded=refunded), request(amount=amount), RULES, NOW)
    assert fields(problems) == ([] if field is None else [field])


def test_return_postage_the_buyer_paid_on_a_return_that_came_back_is_still_claimable():
    back = return_facts(postage_paid=750)
    assert facts(back, refunded=TOTAL).refundable == 750
    problems = claim_problems(facts(back, refunded=TOTAL), request(reason="DEFECTIVE", amount=750), RULES, NOW)
    assert fields(problems) == []


@pytest.mark.parametrize(
    ("label", "paid_by", "insured", "received", "postage"),
    [
        ("unpaid", "seller", None, True, 750),  # the seller owes it: reimbursed as a concession
        ("unpaid", "buyer", None, True, 750),  # the buyer's to bear, still part of what they paid
        ("unpaid", "buyer", 750, True, 0),  # the insurer refunds it, not the order
        ("prepaid", "seller", None, True, 0),
        ("unpaid", "seller", None, False, 0),  # not back yet: the refunds cap does not count it either
    ],
)
def test_a_returns_facts_count_the_postage_the_buyer_paid_once_the_item_is_back(
    label, paid_by, insured, received, postage
):
    order = make_order(lines=[("L1", 1, 1500)])
    options = {"label": label, "paid_by": paid_by, "postage": 750 if label == "unpaid" else None}
    ret = make_return(order, ("L1", 1, "DEFECTIVE"), insured_postage=insured, **options)
    if not received:
        ret = ret.model_copy(update={"status": ReturnStatus.AUTHORIZED, "received_at": None, "receipt": None})
    assert ReturnFacts.of(ret).postage_paid == postage


def test_amount_is_in_the_orders_currency():
    body = ClaimRequest.model_validate(
        {"order_id": "o-1", "reason": "DEFECTIVE", "amount": {"amount": 100, "currency": "EUR"}}
    )
    assert fields(claim_problems(facts(), body, RULES, NOW)) == ["amount.currency"]


# ---- reasons -------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [R.RETURN_NOT_REFUNDED, R.RETURN_REFUSED])
def test_return_reasons_need_a_return_of_the_order(reason):
    assert fields(claim_problems(facts(overdue_return()), request(reason), RULES, NOW)) == ["return_id"]
    unknown = request(reason, return_id="ret_other")
    assert fields(claim_problems(facts(overdue_return()), unknown, RULES, NOW)) == ["return_id"]


@pytest.mark.parametrize("reason", [*NOT_RETURN, R.PARTIAL_REFUND_DISPUTED])
def test_other_reasons_name_no_return(reason):
    problems = claim_problems(facts(overdue_return(), refunded=10), request(reason, return_id="ret_1"), RULES, NOW)
    assert fields(problems) == ["return_id"]


@pytest.mark.parametrize(
    ("ret", "ok"),
    [
        (return_facts(ReturnStatus.RECEIVED, refund_due_at=NOW - timedelta(seconds=1)), True),
        (return_facts(ReturnStatus.RECEIVED, refund_due_at=NOW), False),  # due now: not yet overdue
        (return_facts(ReturnStatus.RECEIVED, refund_due_at=NOW + timedelta(hours=1)), False),
        (return_facts(ReturnStatus.RECEIVED, refund_due_at=None), False),
        *((return_facts(s, refund_due_at=NOW - timedelta(days=1)), False) for s in ReturnStatus if s != "received"),
    ],
)
def test_return_not_refunded_only_for_a_received_return_past_its_refund_deadline(ret, ok):
    problems = claim_problems(facts(ret), request("RETURN_NOT_REFUNDED", return_id="ret_1"), RULES, NOW)
    assert fields(problems) == ([] if ok else ["return_id"])


@pytest.mark.parametrize(
    ("ret", "ok"),
    [
        # In policy and rejected, whatever the reason (a buyer-fault one is no "invalid rejection" in
        # the seller's metrics, still a refusal of a return the buyer was entitled to).
        (return_facts(ReturnStatus.REJECTED), True),
        (return_facts(ReturnStatus.REQUESTED), True),
        # Out of policy (an agent's exception): the seller may refuse it, and it is never auto-authorized.
        (return_facts(ReturnStatus.REJECTED, in_policy=False), False),
        (return_facts(ReturnStatus.REQUESTED, in_policy=False), False),
        *((return_facts(s), False) for s in ReturnStatus if s not in ("rejected", "requested")),
    ],
)
def test_return_refused_only_for_an_in_policy_request_rejected_or_unanswered(ret, ok):
    problems = claim_problems(facts(ret), request("RETURN_REFUSED", return_id="ret_1"), RULES, NOW)
    assert fields(problems) == ([] if ok else ["return_id"])


@pytest.mark.parametrize(
    ("reason", "ret"),
    [
        # Paid after its deadline (the platform's automatic refund comes at the deadline, not before).
        (R.RETURN_NOT_REFUNDED, return_facts(ReturnStatus.RECEIVED, refund_due_at=NOW - timedelta(days=1))),
        # Settled before any answer (an accepted keep-it offer): no return.* event says so.
        (R.RETURN_REFUSED, return_facts(ReturnStatus.REQUESTED)),
    ],
)
def test_a_return_a_refund_was_issued_for_is_no_ground_for_a_return_claim(reason, ret):
    refunded = replace(ret, refunded=True)
    problems = claim_problems(facts(refunded), request(reason, return_id="ret_1"), RULES, NOW)
    assert problems[0].field == "return_id" and problems[0].reason == "the return was refunded"
    assert claim_problems(facts(ret), request(reason, return_id="ret_1"), RULES, NOW) == []


def test_partial_refund_disputed_needs_an_earlier_refund():
    assert fields(claim_problems(facts(), request("PARTIAL_REFUND_DISPUTED"), RULES, NOW)) == ["reason"]
    assert claim_problems(facts(refunded=1), request("PARTIAL_REFUND_DISPUTED"), RULES, NOW) == []


def test_every_problem_is_named_at_once():
    late = ORDERED + timedelta(days=100)
    problems = claim_problems(facts(), request("RETURN_REFUSED", amount=TOTAL + 1), RULES, late)
    assert fields(problems) == ["order_id", "return_id", "amount.amount"]


# ---- one open claim per order, and the claim filed -------------------------------------------


def filed(**changes):
    return file_claim(facts(), request(), [], RULES, claim_id="clm_1", actor=BUYER, now=NOW).model_copy(update=changes)


@pytest.mark.parametrize("status", list(ClaimStatus))
def test_one_open_claim_per_order(status):
    earlier = filed(status=status)
    if status in (ClaimStatus.OPEN, ClaimStatus.CONTESTED, ClaimStatus.PAYING):
        with pytest.raises(OpenClaimExists) as raised:
            file_claim(facts(), request(), [earlier], RULES, claim_id="clm_2", actor=BUYER, now=NOW)
        assert raised.value.claim_id == "clm_1"
    else:
        second = file_claim(facts(), request(), [earlier], RULES, claim_id="clm_2", actor=BUYER, now=NOW)
        assert second.claim_id == "clm_2"
    assert open_claim([filed(status=ClaimStatus.DENIED), earlier]) == (
        earlier if status in ("open", "contested", "paying") else None
    )


def test_a_broken_rule_is_reported_before_the_open_claim():
    with pytest.raises(ClaimProblem):
        file_claim(facts(), request(amount=0), [filed()], RULES, claim_id="clm_2", actor=BUYER, now=NOW)


def test_the_filed_claim():
    claim = file_claim(
        facts(refunded=0),
        request("DEFECTIVE", amount=2000, note="Broken handle"),
        [],
        RULES,
        claim_id="clm_9",
        actor=BUYER,
        now=NOW,
    )
    assert claim.status == ClaimStatus.OPEN and claim.version == 1
    assert claim.respond_by == NOW + timedelta(hours=72)
    assert (claim.filed_at, claim.created_at, claim.updated_at) == (NOW, NOW, NOW)
    assert claim.amount.amount == 2000 and claim.currency == "USD" and claim.marketplace == "US"
    assert (claim.buyer.id, claim.seller.id, claim.order_id) == ("b-1", "s-1", "o-1")
    assert "return_address" not in claim.model_dump()["seller"]
    assert claim.reminded is False and claim.decision is None and claim.payment is None
    assert [(s.action, s.status, s.actor, s.note) for s in claim.timeline] == [("file", "open", BUYER, "Broken handle")]


def test_the_response_time_follows_the_settings():
    rules = ClaimRules(response_time=timedelta(days=7))
    claim = file_claim(facts(), request(), [], rules, claim_id="clm_1", actor=BUYER, now=NOW)
    assert claim.respond_by == NOW + timedelta(days=7)
