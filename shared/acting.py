"""A caller acting on an aggregate: whether its role may take the action, and the id its retries share."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from shared.auth import Principal
from shared.http.domain_errors import NotYourAction


def check_role(principal: Principal, action: str, roles: Mapping[str, frozenset[str]], noun: str) -> None:
    """NotYourAction (403) unless the caller's role may `action` a `noun` (`roles[action]`).
    A service acts only for a named actor, never as itself."""
    role = principal.actor.role
    if role == "service":
        raise NotYourAction("A service must name whom it acts for: `X-Acting-For: <buyer|seller|agent>:<id>`.")
    if role not in roles[action]:
        raise NotYourAction(f"A {role} may not {action} a {noun}.")


def keyed_id(prefix: str, namespace: uuid.UUID, principal: Principal, idempotency_key: str | None) -> str:
    """Derived from (caller, key) when there is a key, so a retry after a crash hits the same `_id`."""
    if idempotency_key is None:
        return f"{prefix}_{uuid.uuid4().hex}"
    return f"{prefix}_{uuid.uuid5(namespace, f'{principal.ref}|{idempotency_key}').hex}"
