"""Replacements (docs/product.md §12): the request's checks, when it is ordered, shipped, given up,
and how the return ends; `refund_to`; the default disposition of each received line."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.returns import domain, replacements
from services.returns.commands import ACTION_ROLES, EVENT_OF, check_role
from services.returns.dispositions import default_disposition
from services.returns.domain import IllegalTransition
from services.returns.eligibility import open_return
from services.returns.policy import PolicyViolation
from services.returns.schemas import AuthorizeBody, ReceiveBody, ReplacementBody, ReturnRequest, ShipBody
from shared.auth import Principal, Role
from shared.http import Forbidden
from shared.models import (
    Disposition,
    ItemCondition,
    ReasonCode,
    RefundDestination,
    ReplacementStatus,
    ReplacementTiming,
    Resolution,
    Return,
    ReturnStatus,
)
from tests.unit.returns.builders import BUYER, RULES, SELLER, make_order, policy, request_data

S, R = ReturnStatus, ReplacementStatus
NOW = datetime(2025, 3, 7, 15, 0, tzinfo=UTC)  # a Friday
LATER = NOW + timedelta(hours=5)
ORDERS = Principal(subject="orders", role=Role.SERVICE)
SERVICE = ORDERS.actor
REPLACING = {"offers_replacements": True}


def listing(blue_price: int = 1500) -> dict:
    """A mug with a blue variant (at `blue_price`) and a lamp without variants."""
    return {
        "line_id": "L1",
        "sku": "SKU-MUG",
        "quantity": 3,
        "unit_price": {"amount": 1500, "currency": "USD"},
        "variants": [{"sku": "SKU-MUG-BLUE", "unit_price": {"amount": blue_price, "currency": "USD"}}],
    }


def order(blue_price: int = 1500):
    return make_order(lines=[listing(blue_price), {"line_id": "L2", "sku": "SKU-LAMP"}])


def request(*lines: tuple, **fields) -> ReturnRequest:
    """Lines as (line_id, quantity, reason[, replacement_sku]); a replacement unless fields say otherwise."""
    data = request_data("o-1", *(line[:3] for line in lines or (("L1", 1, "DEFECTIVE"),)))
    for wanted, line in zip(data["lines"], lines, strict=False):
        if len(line) > 3:
            wanted["replacement_sku"] = line[3]
    return ReturnRequest.model_validate(data | {"resolution": "replacement"} | fields)


def opened(*lines: tuple, rules=RULES, blue_price: int = 1500, **policy_changes) -> list[tuple[str, Return]]:
    the_order = order(blue_price)
    req = request(*lines).model_copy(update={"order_id": the_order.order_id})
    return open_return(
        the_order,
        req,
        return_id="ret_1",
        policy=policy(**(REPLACING | policy_changes)),
        rules=rules,
        already_returned={},
        buyer_flagged=False,
        actor=BUYER,
        now=NOW - timedelta(hours=1),
    )


def created(*lines: tuple, **policy_changes) -> Return:
    return opened(*lines, **policy_changes)[-1][1]


def refused(*lines: tuple, rules=RULES, blue_price: int = 1500, **kwargs) -> list[tuple[str, str]]:
    with pytest.raises(PolicyViolation) as err:
        opened(*lines, rules=rules, blue_price=blue_price, **kwargs)
    return [(p.field, p.reason) for p in err.value.problems]


def authorized(ret: Return, **body) -> list[tuple[str | None, Return]]:
    return replacements.with_follow_ups(
        "return.authorized", domain.authorize(ret, AuthorizeBody(**body), SELLER, NOW, RULES), NOW
    )


def received(ret: Return, at: datetime = LATER, **line) -> list[tuple[str | None, Return]]:
    body = ReceiveBody(lines=[{"line_id": "L1", "quantity": 1, "condition": "sellable"} | line])
    return replacements.with_follow_ups("return.received", domain.receive(ret, body, SELLER, at, RULES), at)


def shipped_body(carrier: str = "UPS", tracking: str = "1ZREPL") -> ReplacementBody:
    return ReplacementBody(status="shipped", carrier=carrier, tracking_number=tracking)


UNAVAILABLE = ReplacementBody(status="unavailable", note="out of stock")


def events(changes) -> list[str | None]:
    return [event for event, _ in changes]


# ---- the request ----------------------------------------------------------------------------


def test_a_replacement_names_its_lines_and_defaults_to_the_returned_sku():
    ret = created(("L1", 1, "DEFECTIVE", "SKU-MUG-BLUE"), ("L2", 1, "DEFECTIVE"))
    assert ret.resolution == Resolution.REPLACEMENT and ret.replacing()
    assert [(line.line_id, line.replacement_sku) for line in ret.lines] == [("L1", "SKU-MUG-BLUE"), ("L2", "SKU-LAMP")]
    assert [(line.line_id, line.sku, line.quantity) for line in ret.replacement.lines] == [
        ("L1", "SKU-MUG-BLUE", 1),
        ("L2", "SKU-LAMP", 1),
    ]
    assert ret.replacement.status == R.REQUESTED and ret.replacement.ordered_at is None


def test_a_refund_return_names_no_replacement():
    the_order = order()
    req = ReturnRequest.model_validate(request_data(the_order.order_id, ("L1", 1, "DEFECTIVE")))
    [(_, ret)] = open_return(
        the_order, req, return_id="r", policy=policy(), rules=RULES, already_returned={}, buyer_flagged=False,
        actor=BUYER, now=NOW,
    )  # fmt: skip
    assert ret.resolution == Resolution.REFUND and ret.replacement is None and not ret.replacing()
    assert ret.refund_to == RefundDestination.ORIGINAL_PAYMENT and ret.lines[0].replacement_sku is None


def test_a_variant_at_another_price_is_refused_naming_the_line():
    assert refused(("L2", 1, "DEFECTIVE"), ("L1", 1, "DEFECTIVE", "SKU-MUG-BLUE"), blue_price=2499) == [
        (
            "lines[1].replacement_sku",
            "costs 2499 USD, the returned item 1500 USD: a replacement must cost the same",
        )
    ]


def test_a_sku_of_another_listing_is_refused():
    assert refused(("L1", 1, "DEFECTIVE", "SKU-LAMP")) == [("lines[0].replacement_sku", "not a SKU of this listing")]


def test_a_replacement_sku_is_only_for_a_replacement():
    with pytest.raises(PolicyViolation) as err:
        the_order = order()
        req = request(("L1", 1, "DEFECTIVE", "SKU-MUG"), resolution="refund")
        open_return(
            the_order, req, return_id="r", policy=policy(**REPLACING), rules=RULES, already_returned={},
            buyer_flagged=False, actor=BUYER, now=NOW,
        )  # fmt: skip
    assert [p.field for p in err.value.problems] == ["lines[0].replacement_sku"]


def test_replacements_need_the_setting_and_the_sellers_policy():
    assert refused(("L1", 1, "DEFECTIVE"), offers_replacements=False) == [
        ("resolution", "this seller does not offer replacements")
    ]
    off = dataclasses.replace(RULES, replacements_allowed=False)
    assert refused(("L1", 1, "DEFECTIVE"), rules=off) == [
        ("resolution", "replacements are not offered on this marketplace")
    ]


def test_store_credit_needs_the_setting():
    the_order = order()
    data = request_data(the_order.order_id, ("L1", 1, "NO_LONGER_NEEDED")) | {"refund_to": "store_credit"}
    req = ReturnRequest.model_validate(data)
    kwargs = dict(return_id="r", policy=policy(), already_returned={}, buyer_flagged=False, actor=BUYER, now=NOW)
    [(_, ret)] = open_return(the_order, req, rules=RULES, **kwargs)
    assert ret.refund_to == RefundDestination.STORE_CREDIT
    with pytest.raises(PolicyViolation) as err:
        open_return(the_order, req, rules=dataclasses.replace(RULES, store_credit_allowed=False), **kwargs)
    assert [p.field for p in err.value.problems] == ["refund_to"]


@pytest.mark.parametrize(
    "body",
    [
        {"resolution": "exchange"},
        {"refund_to": "gift_card"},
        {"lines": [{"line_id": "L1", "quantity": 1, "reason_code": "DEFECTIVE", "replacement_sku": ""}]},
        {"lines": [{"line_id": "L1", "quantity": 1, "reason_code": "DEFECTIVE", "variant": "x"}]},
    ],
)
def test_the_request_body_is_strict(body):
    with pytest.raises(ValidationError):
        ReturnRequest.model_validate(request_data("o-1") | body)


def test_the_policy_snapshot_carries_the_replacement_terms():
    snap = policy(offers_replacements=True, replacement_ships="at_authorization").snapshot()
    assert snap.offers_replacements and snap.replacement_ships == ReplacementTiming.AT_AUTHORIZATION
    assert not policy().snapshot().offers_replacements
    assert policy().snapshot().replacement_ships == ReplacementTiming.AT_RECEIPT


# ---- when it ships --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reason, ships_policy, ships",
    [
        ("DEFECTIVE", "at_authorization", "at_authorization"),
        ("NO_LONGER_NEEDED", "at_authorization", "at_receipt"),  # the buyer's fault: the item first
        ("DEFECTIVE", "at_receipt", "at_receipt"),
        ("NO_LONGER_NEEDED", "at_receipt", "at_receipt"),
    ],
)
def test_it_ships_ahead_of_the_item_only_when_the_seller_is_at_fault(reason, ships_policy, ships):
    assert created(("L1", 1, reason), replacement_ships=ships_policy).replacement.ships == ships


def test_ahead_of_the_item_it_is_ordered_in_the_authorizations_write():
    changes = authorized(created(replacement_ships="at_authorization"))
    assert events(changes) == ["return.authorized", "return.replacement_ordered"]
    (_, auth), (_, ordered) = changes
    assert auth.replacement.status == R.REQUESTED and auth.version + 1 == ordered.version
    assert ordered.status == S.AUTHORIZED and ordered.replacement.status == R.ORDERED
    assert ordered.replacement.ordered_at == NOW and ordered.timeline[-1].action == "order_replacement"
    # Ordered once: the item's receipt orders nothing more.
    assert events(received(ordered)) == ["return.received"]


def test_at_receipt_it_is_ordered_in_the_receipts_write_and_nothing_is_due_for_refund():
    [(_, auth)] = authorized(created())
    assert auth.replacement.status == R.REQUESTED
    changes = received(auth)
    assert events(changes) == ["return.received", "return.replacement_ordered"]
    got, ordered = changes[0][1], changes[1][1]
    assert got.refund_due_at is None and ordered.replacement.status == R.ORDERED and ordered.status == S.RECEIVED


def test_a_returnless_authorization_orders_it_at_once():
    changes = authorized(created(), returnless=True)
    assert events(changes) == ["return.authorized", "return.replacement_ordered"]
    assert "replacement" in changes[0][1].authorization.instructions


def test_an_automatic_authorization_at_creation_orders_it_in_the_creations_write():
    changes = opened(("L1", 1, "DEFECTIVE"), auto_authorize=True, replacement_ships="at_authorization")
    assert events(changes) == ["return.created", "return.authorized", "return.replacement_ordered"]
    assert [ret.version for _, ret in changes] == [1, 2, 3]


def test_the_platforms_late_authorization_orders_it_too():
    after = domain.platform_authorize(created(replacement_ships="at_authorization"), NOW, RULES)
    assert events(replacements.with_follow_ups("return.authorized", after, NOW))[-1] == "return.replacement_ordered"


# ---- shipped, replaced ----------------------------------------------------------------------


def ordered_ahead() -> Return:
    return authorized(created(replacement_ships="at_authorization"))[-1][1]


def test_shipped_before_the_item_is_back_then_replaced_at_receipt():
    ret = ordered_ahead()
    sent = replacements.ship(ret, shipped_body(), SERVICE, NOW)
    assert replacements.follow_ups(sent, NOW) == []  # the item is still to come back
    assert sent.replacement.status == R.SHIPPED and sent.replacement.shipped_at == NOW
    assert (sent.replacement.carrier, sent.replacement.tracking_number) == ("UPS", "1ZREPL")
    assert sent.status == S.AUTHORIZED and sent.timeline[-1].actor == SERVICE
    on_way = domain.ship(sent, ShipBody(carrier="USPS", tracking_number="9400"), BUYER, NOW)
    changes = received(on_way)
    assert events(changes) == ["return.received", "return.replaced"]
    got, done = changes[0][1], changes[1][1]
    assert got.status == S.RECEIVED and got.refund_due_at is None
    assert done.status == S.REPLACED and done.replaced_at == LATER and done.version == got.version + 1
    assert domain.record_feedback(done, True, BUYER, LATER).status == S.REPLACED


def test_shipped_after_the_item_is_back_replaces_in_the_same_write():
    ret = received(authorized(created())[0][1])[-1][1]
    sent = replacements.ship(ret, shipped_body(), SERVICE, LATER)
    assert [e for e, _ in replacements.with_follow_ups("return.replacement_shipped", sent, LATER)] == [
        "return.replacement_shipped",
        "return.replaced",
    ]


def test_shipped_on_a_returnless_authorization_replaces_at_once():
    ret = authorized(created(), returnless=True)[-1][1]
    sent = replacements.ship(ret, shipped_body(), SERVICE, NOW)
    [(event, done)] = replacements.follow_ups(sent, NOW)
    assert event == "return.replaced" and done.status == S.REPLACED


def test_the_same_confirmation_again_changes_nothing_a_different_one_is_refused():
    sent = replacements.ship(ordered_ahead(), shipped_body(), SERVICE, NOW)
    assert replacements.ship(sent, shipped_body(), SERVICE, LATER) is sent
    with pytest.raises(IllegalTransition, match="already shipped with UPS 1ZREPL"):
        replacements.ship(sent, shipped_body(tracking="1ZOTHER"), SERVICE, LATER)
    with pytest.raises(IllegalTransition):
        replacements.give_up(sent, UNAVAILABLE, SERVICE, LATER, RULES)
    done = received(sent)[-1][1]
    assert replacements.ship(done, shipped_body(), SERVICE, LATER) is done  # a retry after the end too


def test_only_an_ordered_replacement_ships():
    with pytest.raises(IllegalTransition, match="only an ordered one ships"):
        replacements.ship(created(), shipped_body(), SERVICE, NOW)
    with pytest.raises(IllegalTransition, match="no replacement"):
        replacements.ship(
            domain.authorize(refund_return(), AuthorizeBody(), SELLER, NOW, RULES), shipped_body(), SERVICE, NOW
        )


def refund_return() -> Return:
    the_order = order()
    req = ReturnRequest.model_validate(request_data(the_order.order_id, ("L1", 1, "DEFECTIVE")))
    return open_return(
        the_order, req, return_id="r", policy=policy(), rules=RULES, already_returned={}, buyer_flagged=False,
        actor=BUYER, now=NOW,
    )[0][1]  # fmt: skip


@pytest.mark.parametrize(
    "body, fields",
    [
        ({"status": "shipped"}, ["carrier", "tracking_number"]),
        ({"status": "shipped", "carrier": "UPS"}, ["tracking_number"]),
        ({"status": "unavailable", "carrier": "UPS"}, ["carrier"]),
    ],
)
def test_the_answer_names_what_it_lacks_or_should_not_have(body, fields):
    step = replacements.ship if body["status"] == "shipped" else replacements.give_up
    args = (RULES,) if step is replacements.give_up else ()
    with pytest.raises(PolicyViolation) as err:
        step(ordered_ahead(), ReplacementBody(**body), SERVICE, NOW, *args)
    assert [p.field for p in err.value.problems] == fields


def test_the_replacement_body_is_strict():
    for body in ({"status": "lost"}, {"status": "shipped", "carrier": "UPS", "tracking_number": "1", "eta": "x"}):
        with pytest.raises(ValidationError):
            ReplacementBody.model_validate(body)


# ---- unavailable ----------------------------------------------------------------------------


def test_unavailable_before_receipt_falls_back_to_a_refund_at_receipt():
    ret = replacements.give_up(ordered_ahead(), UNAVAILABLE, SERVICE, NOW, RULES)
    assert ret.replacement.status == R.UNAVAILABLE and ret.replacement.unavailable_at == NOW and not ret.replacing()
    assert ret.refund_due_at is None and ret.replacement.note == "out of stock"
    [(event, got)] = received(ret)
    assert event == "return.received" and got.refund_due_at == RULES.refund_due(LATER, "US")


def test_unavailable_after_receipt_sets_the_refund_deadline_from_now():
    ret = received(authorized(created())[0][1])[-1][1]
    assert ret.refund_due_at is None and ret.replacement.status == R.ORDERED
    fallback = replacements.give_up(ret, UNAVAILABLE, SERVICE, LATER + timedelta(days=1), RULES)
    assert fallback.refund_due_at == RULES.refund_due(LATER + timedelta(days=1), "US")
    assert fallback.status == S.RECEIVED and fallback.timeline[-1].action == "replacement_unavailable"
    assert replacements.follow_ups(fallback, LATER) == []


def test_unavailable_while_still_requested_and_said_twice():
    ret = replacements.give_up(created(), UNAVAILABLE, SELLER, NOW, RULES)
    assert ret.status == S.REQUESTED and ret.replacement.status == R.UNAVAILABLE
    assert replacements.give_up(ret, UNAVAILABLE, SELLER, LATER, RULES) is ret
    with pytest.raises(IllegalTransition):
        replacements.ship(ret, shipped_body(), SERVICE, LATER)
    assert events(authorized(ret, returnless=True)) == ["return.authorized"]  # nothing to order any more


# Every (return status, replacement status) an answer applies in; everything else is a 409 (or,
# for the same answer again, the return unchanged).
SHIPS_FROM = {(s, R.ORDERED) for s in (S.AUTHORIZED, S.SHIPPED, S.RECEIVED)}
GIVES_UP_FROM = {(s, r) for s in (S.REQUESTED, S.AUTHORIZED, S.SHIPPED, S.RECEIVED) for r in (R.REQUESTED, R.ORDERED)}


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("replacement", list(R))
def test_every_answer_from_every_status(status, replacement):
    ret = created().model_copy(update={"status": status})
    ret = ret.model_copy(update={"replacement": ret.replacement.model_copy(update={"status": replacement})})
    if (status, replacement) in SHIPS_FROM:
        assert replacements.ship(ret, shipped_body(), SERVICE, NOW).replacement.status == R.SHIPPED
    else:
        with pytest.raises(IllegalTransition):
            replacements.ship(ret, shipped_body(tracking="other"), SERVICE, NOW)
    if (status, replacement) in GIVES_UP_FROM:
        assert replacements.give_up(ret, UNAVAILABLE, SERVICE, NOW, RULES).replacement.status == R.UNAVAILABLE
    elif replacement == R.UNAVAILABLE:
        assert replacements.give_up(ret, UNAVAILABLE, SERVICE, NOW, RULES) is ret
    else:
        with pytest.raises(IllegalTransition):
            replacements.give_up(ret, UNAVAILABLE, SERVICE, NOW, RULES)


def test_who_may_answer_and_the_events_of_the_answers():
    assert EVENT_OF["ship_replacement"] == "return.replacement_shipped"
    assert EVENT_OF["replacement_unavailable"] == "return.replacement_unavailable"
    for action in ("ship_replacement", "replacement_unavailable"):
        assert ACTION_ROLES[action] == {"service", "seller", "agent"}
        check_role(ORDERS, action)  # the order system, on its own account
        check_role(Principal(subject="s-1", role=Role.SELLER), action)
        with pytest.raises(Forbidden):
            check_role(Principal(subject="b-1", role=Role.BUYER), action)
    with pytest.raises(Forbidden):  # other actions still need a service to name whom it acts for
        check_role(ORDERS, "receive")


# ---- dispositions ---------------------------------------------------------------------------

C, D = ItemCondition, Disposition
DISPOSITIONS = {
    C.SELLABLE: D.RESTOCK,
    C.OPENED: D.REFURBISH,
    C.USED: D.REFURBISH,
    C.DAMAGED_BY_BUYER: D.DISPOSE,
    C.DAMAGED_IN_TRANSIT: D.DISPOSE,
    C.WRONG_ITEM: D.RETURN_TO_VENDOR,
}


@pytest.mark.parametrize("condition", [c for c in C if c != C.MISSING])
@pytest.mark.parametrize("reason", list(ReasonCode))
def test_the_default_disposition(condition, reason):
    expected = D.RETURN_TO_VENDOR if reason == ReasonCode.DEFECTIVE else DISPOSITIONS[condition]
    assert default_disposition(condition, 1, reason) == expected
    assert default_disposition(condition, 0, reason) is None  # nothing arrived


def test_a_missing_line_has_no_disposition():
    assert default_disposition(C.MISSING, 0, ReasonCode.DEFECTIVE) is None


def test_the_receipt_carries_each_lines_disposition_the_sellers_first():
    ret = domain.authorize(refund_return(), AuthorizeBody(), SELLER, NOW, RULES)
    ret = ret.model_copy(update={"lines": [*ret.lines, ret.lines[0].model_copy(update={"line_id": "L2"})]})
    body = ReceiveBody(
        lines=[
            {"line_id": "L1", "quantity": 1, "condition": "sellable"},
            {"line_id": "L2", "quantity": 1, "condition": "sellable", "disposition": "refurbish"},
        ]
    )
    got = domain.receive(ret, body, SELLER, LATER, RULES)
    assert [(line.line_id, line.disposition) for line in got.receipt.lines] == [
        ("L1", D.RETURN_TO_VENDOR),  # DEFECTIVE
        ("L2", D.REFURBISH),
    ]
    only_l1 = domain.receive(ret, ReceiveBody(lines=[body.lines[0]]), SELLER, LATER, RULES)
    assert [(line.line_id, line.disposition) for line in only_l1.receipt.lines][-1] == ("L2", None)


def test_a_disposition_for_nothing_received_is_refused():
    ret = domain.authorize(refund_return(), AuthorizeBody(), SELLER, NOW, RULES)
    body = ReceiveBody(lines=[{"line_id": "L1", "quantity": 0, "condition": "missing", "disposition": "dispose"}])
    with pytest.raises(PolicyViolation) as err:
        domain.receive(ret, body, SELLER, LATER, RULES)
    assert [p.field for p in err.value.problems] == ["lines[0].disposition"]
