"""Who may do what to a return, ids derived from Idempotency-Keys, and the If-Match header."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.returns.api import expected_version
from services.returns.commands import ACTION_ROLES, check_role, millis, return_id_for
from shared.auth import Principal, Role
from shared.http import Forbidden, PreconditionFailed, Unprocessable
from shared.models import Actor


def principal(role: str, sub: str = "x", acting_for: Actor | None = None) -> Principal:
    return Principal(subject=sub, role=Role(role), acting_for=acting_for)


@pytest.mark.parametrize(
    "action, allowed",
    [
        ("create", {"buyer", "agent"}),
        ("ship", {"buyer", "agent"}),
        ("feedback", {"buyer", "agent"}),
        ("authorize", {"seller", "agent"}),
        ("reject", {"seller", "agent"}),
        ("receive", {"seller", "agent"}),
        ("close", {"buyer", "seller", "agent"}),
        ("make_offer", {"seller", "agent"}),
        ("accept_offer", {"buyer", "agent"}),
        ("decline_offer", {"buyer", "agent"}),
    ],
)
def test_role_rules(action, allowed):
    assert ACTION_ROLES[action] == allowed
    for role in ("buyer", "seller", "agent", "service"):
        if role in allowed:
            check_role(principal(role), action)
        else:
            with pytest.raises(Forbidden):
                check_role(principal(role), action)


def test_a_service_acts_with_the_rights_of_whom_it_names():
    check_role(principal("service", "crm", Actor(role="seller", id="s-1")), "authorize")
    with pytest.raises(Forbidden):
        check_role(principal("service", "crm", Actor(role="buyer", id="b-1")), "authorize")


def test_ids_from_the_same_caller_and_key_are_the_same():
    buyer = principal("buyer", "b-1")
    assert return_id_for(buyer, "k1") == return_id_for(buyer, "k1") != return_id_for(buyer, "k2")
    assert return_id_for(principal("buyer", "b-2"), "k1") != return_id_for(buyer, "k1")
    assert return_id_for(buyer, None) != return_id_for(buyer, None)
    assert return_id_for(buyer, "k1").startswith("ret_") and len(return_id_for(buyer, "k1")) == 36


def test_times_are_kept_to_the_millisecond_like_mongodb():
    assert millis(datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)).microsecond == 123000


@pytest.mark.parametrize("header", [None, "*", " * "])
def test_if_match_absent_or_star_sets_no_condition(header):
    assert expected_version(header) is None


@pytest.mark.parametrize(
    "header, admitted",
    [('"3"', {3}), ("7", {7}), ('"3", "4"', {3, 4}), ('W/"12"', set()), ('W/"12", "13"', {13}), ('"abc"', set())],
)
def test_if_match_compares_strongly(header, admitted):
    condition = expected_version(header)
    assert condition is not None
    assert {v for v in range(20) if condition.admits(v)} == admitted


def test_a_stale_if_match_fails_the_precondition():
    condition = expected_version('W/"3"')
    assert condition is not None
    with pytest.raises(PreconditionFailed) as failed:
        condition.check(3, "return")
    assert failed.value.status == 412 and failed.value.type.endswith("/precondition-failed")


@pytest.mark.parametrize("header", ['"3', 'x"y', "", '"3",, "4"', "x" * 300])
def test_if_match_that_is_no_tag_list_is_refused(header):
    with pytest.raises(Unprocessable):
        expected_version(header)
