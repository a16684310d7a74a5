"""Who may do what to a return, ids derived from Idempotency-Keys, and the If-Match header."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.returns.api import expected_version
from services.returns.commands import ACTION_ROLES, check_role, millis, return_id_for
from shared.auth import Principal, Role
from shared.http import Forbidden, Unprocessable
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


@pytest.mark.parametrize("header, version", [(None, None), ("*", None), ('"3"', 3), ('W/"12"', 12), ("7", 7)])
def test_if_match_carries_the_version(header, version):
    assert expected_version(header) == version


def test_if_match_that_is_no_version_is_refused():
    with pytest.raises(Unprocessable):
        expected_version('"abc"')
