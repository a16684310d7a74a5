"""docs/openapi/<service>.json against each service's app and the OpenAPI 3.1 schema."""

from __future__ import annotations

import functools
import importlib
import json
from typing import Any

import jsonschema
import pytest

from tests.contract.support import (
    ROOT,
    SERVICES,
    differences,
    iter_refs,
    resolve_pointer,
    schema_errors,
    vendored_schema,
)
from tools import contracts

PROBLEM_JSON = "application/problem+json"
# No bearer token: the probes, and Stripe's webhook (its Stripe-Signature header authenticates it).
UNAUTHENTICATED = {"/healthz", "/readyz", "/v1/webhooks/stripe"}


@functools.cache
def built(service: str) -> dict[str, Any]:
    try:
        importlib.import_module(f"services.{service}.app")
    except ImportError as exc:
        pytest.fail(f"services.{service}.app does not import yet: {exc}")
    return contracts.openapi_document(service)  # a service that imports but can't build its schema fails


def committed(service: str) -> dict[str, Any]:
    path = ROOT / "docs" / "openapi" / f"{service}.json"
    assert path.exists(), f"{path.relative_to(ROOT)} missing; run scripts/gen-contracts"
    return json.loads(path.read_text())


@pytest.mark.parametrize("service", SERVICES)
def test_committed_document_matches_the_app(service):
    diffs = differences(built(service), committed(service))
    assert not diffs, f"docs/openapi/{service}.json is stale; run scripts/gen-contracts:\n" + "\n".join(diffs)


@pytest.mark.parametrize("service", SERVICES)
def test_valid_openapi_3_1_document(service):
    document = built(service)
    assert document["openapi"].startswith("3.1.")
    errors = schema_errors(jsonschema.Draft202012Validator, vendored_schema("openapi-3.1.json"), document)
    assert not errors, "\n".join(errors)
    dangling = []
    for where, ref in iter_refs(document):
        try:
            resolve_pointer(document, ref)
        except (KeyError, IndexError):
            dangling.append(f"{where} -> {ref}")
    assert not dangling, "\n".join(dangling)


@pytest.mark.parametrize("service", SERVICES)
def test_openapi_spec_validator_accepts_it(service):
    import openapi_spec_validator as validator

    validator.validate(built(service))


@pytest.mark.parametrize("service", SERVICES)
def test_api_conventions(service):
    """Bearer auth on every business operation; every API error documented as problem+json."""
    document = built(service)
    schemes = document.get("components", {}).get("securitySchemes", {})
    assert any(s.get("type") == "http" and s.get("scheme") == "bearer" for s in schemes.values())
    problems = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            name = f"{method.upper()} {path}"
            if path not in UNAUTHENTICATED and not operation.get("security"):
                problems.append(f"{name}: no bearer security requirement")
            if path not in UNAUTHENTICATED and "401" not in operation["responses"]:
                problems.append(f"{name}: 401 not documented")
            for status, response in operation["responses"].items():
                if path.startswith("/v1/") and (status.startswith(("4", "5")) or status == "default"):
                    content = response.get("content", {})
                    if PROBLEM_JSON not in content:
                        problems.append(f"{name}: {status} is not documented as {PROBLEM_JSON}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_lets_operators_list_and_replay_dead_letters(service):
    paths = built(service)["paths"]
    assert "get" in paths["/v1/admin/dead-letters"] and "post" in paths["/v1/admin/dead-letters/replay"]
