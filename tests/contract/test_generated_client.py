"""The published OpenAPI documents stay usable: a Python client generated from them (openapi-python-client)
drives one whole return and one direct refund against a running stack.

The clients raise on any status their document does not declare (`raise_on_unexpected_status`), and
every answer's headers (ETag, Location, Idempotent-Replayed, X-Request-ID) must be declared for that
operation and status: the documents say what the servers do, or this fails. The clients are generated
once per session from docs/openapi/<service>.json; the stack is tests/e2e's (real service processes).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.e2e.harness import Stack, eventually
from tests.e2e.world import World

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
CLIENTS = ("returns", "refunds")
TRACKED_HEADERS = ("ETag", "Location", "Idempotent-Replayed", "X-Request-ID", "Retry-After")


def document(service: str) -> dict[str, Any]:
    return json.loads((REPO / "docs" / "openapi" / f"{service}.json").read_text())


def generate(service: str, into: Path) -> SimpleNamespace:
    """Generate `<service>_contract_client` from the committed document and import its modules."""
    package = f"{service}_contract_client"
    config = into / f"{service}.yaml"
    config.write_text(f"package_name_override: {package}\npost_hooks: []\n")
    document_path = REPO / "docs" / "openapi" / f"{service}.json"
    command = ["generate", "--path", str(document_path), "--meta", "none", "--output-path", str(into / package)]
    subprocess.run(
        [sys.executable, "-m", "openapi_python_client", *command, "--config", str(config), "--fail-on-warning"],
        check=True,
        capture_output=True,
    )
    return SimpleNamespace(
        package=importlib.import_module(package),
        api=lambda module: importlib.import_module(f"{package}.api.{module}"),
        models=importlib.import_module(f"{package}.models"),
    )


@pytest.fixture(scope="session")
def clients(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SimpleNamespace]:
    into = tmp_path_factory.mktemp("generated-clients")
    sys.path.insert(0, str(into))
    try:
        return {service: generate(service, into) for service in CLIENTS}
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"openapi-python-client refused a document:\n{exc.stdout.decode()}\n{exc.stderr.decode()}")


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    platform = Stack()
    try:
        await platform.start()
        yield platform
    finally:
        await platform.stop(cleanup=True)


class Caller:
    """One party's generated clients; `call` checks every answer against the document."""

    def __init__(self, stack: Stack, clients: dict[str, SimpleNamespace], role: str, sub: str) -> None:
        self.clients = clients
        self.http = {
            service: clients[service].package.AuthenticatedClient(
                base_url=stack.url(service), token=stack.token(role, sub, service), raise_on_unexpected_status=True
            )
            for service in CLIENTS
        }

    async def call(self, service: str, operation: str, *args: Any, expect: int | tuple[int, ...], **kwargs: Any) -> Any:
        """Call `operation` (the module the operationId generated, e.g. `transitions.authorize_return`)."""
        module = self.clients[service].api(operation)
        response = await module.asyncio_detailed(*args, client=self.http[service], **kwargs)
        declared_for(service, operation_id(operation), int(response.status_code), response.headers)
        expected = (expect,) if isinstance(expect, int) else expect
        assert int(response.status_code) in expected, f"{operation}: {response.status_code} {response.content[:500]!r}"
        return response


def operation_id(module: str) -> str:
    head, *rest = module.rsplit(".", 1)[-1].split("_")
    return head + "".join(word.title() for word in rest)


def declared_for(service: str, op_id: str, status: int, headers: Any) -> None:
    [operation] = [
        op
        for item in document(service)["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and op.get("operationId") == op_id
    ]
    assert str(status) in operation["responses"], f"{op_id} answered {status}, undeclared"
    declared = set(operation["responses"][str(status)].get("headers", {}))
    sent = {name for name in TRACKED_HEADERS if name in headers}
    assert "X-Request-ID" in sent, f"{op_id}: no X-Request-ID"
    assert sent <= declared, f"{op_id} {status} sent {sorted(sent - declared)} without declaring them"


def parties(stack: Stack, clients: dict[str, SimpleNamespace]) -> tuple[World, dict[str, Any], dict[str, Caller]]:
    world = World(stack, "gen-client")
    buyer, seller = world.buyer(), world.seller()
    order = world.order(buyer, seller, [("L1", "Desk lamp", "home", 1, 2549)], shipping=599)
    callers = {
        "buyer": Caller(stack, clients, "buyer", buyer.id),
        "seller": Caller(stack, clients, "seller", seller.id),
        "service": Caller(stack, clients, "service", "order-system"),
    }
    return world, order, callers


async def put_order(callers: dict[str, Caller], clients: dict[str, SimpleNamespace], order: dict[str, Any]) -> None:
    body = clients["returns"].models.Order.from_dict(order)
    service = callers["service"]
    await service.call("returns", "orders.put_order", order["order_id"], body=body, expect=201)
    await service.call("returns", "orders.put_order", order["order_id"], body=body, expect=200)


async def test_a_whole_return_through_the_generated_clients(stack, clients):
    _, order, callers = parties(stack, clients)
    returns = clients["returns"].models
    buyer, seller = callers["buyer"], callers["seller"]
    await put_order(callers, clients, order)

    request = returns.ReturnRequest.from_dict(
        {"order_id": order["order_id"], "lines": [{"line_id": "L1", "quantity": 1, "reason_code": "NO_LONGER_NEEDED"}]}
    )
    key = uuid.uuid4().hex
    created = await buyer.call("returns", "returns.create_return", body=request, idempotency_key=key, expect=201)
    rid = created.parsed.return_id
    assert created.headers["Location"] == f"/v1/returns/{rid}"
    again = await buyer.call("returns", "returns.create_return", body=request, idempotency_key=key, expect=201)
    assert again.headers["Idempotent-Replayed"] == "true" and again.parsed.return_id == rid

    seen = await seller.call("returns", "returns.get_return", rid, expect=200)
    authorize = returns.AuthorizeBody.from_dict(
        {"label_type": "unpaid", "return_postage": {"amount": 750, "currency": "USD"}}
    )
    authorized = await seller.call(
        "returns", "transitions.authorize_return", rid, body=authorize, if_match=seen.headers["ETag"], expect=200
    )
    assert authorized.parsed.status.value == "authorized" and authorized.headers["ETag"] != seen.headers["ETag"]
    ship = returns.ShipBody.from_dict({"carrier": "USPS", "tracking_number": "9400111899560000000001"})
    # A stale If-Match is refused with RFC 9110's 412 Precondition Failed.
    await buyer.call("returns", "transitions.ship_return", rid, body=ship, if_match=seen.headers["ETag"], expect=412)
    await buyer.call("returns", "transitions.ship_return", rid, body=ship, expect=200)
    receive = returns.ReceiveBody.from_dict({"lines": [{"line_id": "L1", "quantity": 1, "condition": "opened"}]})
    await seller.call("returns", "transitions.receive_return", rid, body=receive, expect=200)

    async def refunded() -> Any:
        ret = await seller.call("returns", "returns.get_return", rid, expect=200)
        return ret.parsed.status.value == "refunded"

    await eventually(refunded, what=f"return {rid} refunded")
    page = await seller.call("refunds", "refunds.list_refunds", return_id=rid, expect=200)
    [refund] = page.parsed.items
    assert (refund.status.value, refund.kind.value, refund.amount.amount) == ("issued", "return", 2549)
    await seller.call("refunds", "refunds.get_refund", refund.refund_id, expect=200)


async def test_a_direct_refund_through_the_generated_clients(stack, clients):
    _, order, callers = parties(stack, clients)
    seller = callers["seller"]
    await put_order(callers, clients, order)
    body = clients["refunds"].models.RefundRequest.from_dict({"order_id": order["order_id"]})
    key = uuid.uuid4().hex

    async def refunded() -> Any:
        # 404 until the refunds service has the order (announced by the PUT, through the broker).
        answer = await seller.call(
            "refunds", "refunds.create_refund", body=body, idempotency_key=key, expect=(201, 404)
        )
        return answer if int(answer.status_code) == 201 else None

    created = await eventually(refunded, what=f"order {order['order_id']} known to refunds")
    refund = created.parsed
    # Without lines, an order is refunded for everything paid: the item and the outbound shipping.
    assert (refund.kind.value, refund.status.value, refund.amount.amount) == ("direct", "issued", 2549 + 599)
    again = await seller.call("refunds", "refunds.create_refund", body=body, idempotency_key=key, expect=201)
    assert again.headers["Idempotent-Replayed"] == "true" and again.parsed.refund_id == refund.refund_id
