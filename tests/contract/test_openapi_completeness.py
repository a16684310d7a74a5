"""Each OpenAPI document says everything its server does: readable operationIds, `servers`, the statuses
and headers the shared machinery answers with, and Idempotency-Key required where the server requires it.
What each server really answers is driven through generated clients in test_generated_client.py."""

from __future__ import annotations

import importlib
import re
from collections import Counter
from typing import Any

import pytest

from tests.contract.support import SERVICES
from tests.contract.test_openapi import built
from tools import contracts

OPERATION_ID = re.compile(r"^[a-z][a-zA-Z0-9]+$")
# The operations that refuse to run without an Idempotency-Key (they pay or spend money).
KEY_REQUIRED = {("refunds", "createRefund"), ("refunds", "debitStoreCredit")}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
    ]


def header_params(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", []) if p.get("in") == "header"}


def response_headers(response: dict[str, Any]) -> set[str]:
    return set(response.get("headers", {}))


@pytest.mark.parametrize("service", SERVICES)
def test_operation_ids_are_readable_and_unique(service):
    ids = [operation.get("operationId", "") for _, _, operation in operations(built(service))]
    unreadable = [i for i in ids if not OPERATION_ID.match(i)]
    assert not unreadable, f"not camelCase: {unreadable}"
    # FastAPI's default ids end in the method (`create_return_v1_returns_post`); readable ones don't.
    assert not [i for i in ids if re.search(r"(Get|Post|Put|Patch|Delete)$", i)], ids
    duplicated = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicated, f"operationIds used twice: {duplicated}"


@pytest.mark.parametrize("service", SERVICES)
def test_servers_name_the_default_local_url(service):
    assert built(service)["servers"] == [{"url": f"http://localhost:{contracts.PORTS[service]}"}]


def test_public_base_url_setting_sets_servers():
    app_module = importlib.import_module("services.refunds.app")
    settings = contracts.contract_settings("refunds").model_copy(
        update={"public_base_url": "https://refunds.example.com/"}
    )
    assert app_module.create_app(settings).openapi()["servers"] == [{"url": "https://refunds.example.com"}]


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_declares_its_statuses_and_headers(service):
    document = built(service)
    problems = []
    for path, method, operation in operations(document):
        name = f"{operation.get('operationId')} ({method.upper()} {path})"
        responses = operation["responses"]
        statuses = set(responses)
        headers = header_params(operation)
        wanted: set[str] = set()
        if not any(status.startswith("2") for status in statuses):
            problems.append(f"{name}: no 2xx")
        if "requestBody" in operation:
            wanted |= {"413", "415", "422"}
        if "If-Match" in headers:
            wanted |= {"409", "412"}
            # Its 200 answers the changed return; a 201 (an offer made) answers the Location instead.
            if "200" in responses and "ETag" not in response_headers(responses["200"]):
                problems.append(f"{name}: takes If-Match but its 200 declares no ETag")
        if "Idempotency-Key" in headers:
            wanted |= {"409", "422"}
            for status in statuses:
                if status.startswith("2") and "Idempotent-Replayed" not in response_headers(responses[status]):
                    problems.append(f"{name}: {status} can be a replay but declares no Idempotent-Replayed")
        if missing := sorted(wanted - statuses):
            problems.append(f"{name}: missing {missing}")
        for status, response in responses.items():
            if "X-Request-ID" not in response_headers(response):
                problems.append(f"{name}: {status} declares no X-Request-ID")
        for header in response_headers_used(operation):
            if header not in document["components"]["headers"]:
                problems.append(f"{name}: header {header} not in components.headers")
    assert not problems, "\n".join(problems)


def response_headers_used(operation: dict[str, Any]) -> set[str]:
    return {
        ref.rsplit("/", 1)[-1]
        for response in operation["responses"].values()
        for header in response.get("headers", {}).values()
        if (ref := header.get("$ref"))
    }


@pytest.mark.parametrize("service", SERVICES)
def test_idempotency_key_required_exactly_where_the_server_requires_it(service):
    wrong = []
    for _, _, operation in operations(built(service)):
        key = header_params(operation).get("Idempotency-Key")
        if key is None:
            continue
        required = (service, operation["operationId"]) in KEY_REQUIRED
        if bool(key.get("required")) != required:
            wrong.append(f"{operation['operationId']}: required={key.get('required')}, server requires: {required}")
    assert not wrong, "\n".join(wrong)


def test_put_order_declares_201_on_first_write_and_200_after():
    put = built("returns")["paths"]["/v1/orders/{order_id}"]["put"]
    assert put["operationId"] == "putOrder"
    assert {"200", "201"} <= set(put["responses"])
    assert put["responses"]["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Order"}


@pytest.mark.parametrize(
    ("service", "operation_id", "header"),
    [
        ("returns", "createReturn", "Location"),
        ("returns", "getReturn", "ETag"),
        ("returns", "authorizeReturn", "ETag"),
        ("refunds", "debitStoreCredit", "Location"),
    ],
)
def test_headers_the_server_sends_are_declared(service, operation_id, header):
    document = built(service)
    [operation] = [op for _, _, op in operations(document) if op["operationId"] == operation_id]
    success = next(status for status in operation["responses"] if status.startswith("2"))
    assert header in operation["responses"][success]["headers"]
