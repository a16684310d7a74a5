"""Problem+json mapping, request ids and the body-size limit (no server needed)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from shared.http import Unprocessable, field_path, problem_type, validation_errors
from shared.service import create_service_app
from shared.settings import CommonSettings

SETTINGS = CommonSettings(service_name="returns", jwt_secret="s" * 64, max_body_bytes=1024)


class Line(BaseModel):
    line_id: str
    quantity: int = Field(gt=0)


class ReturnRequest(BaseModel):
    order_id: str
    lines: list[Line] = Field(min_length=1)


class QuantityTooHigh(Unprocessable):
    title, slug = "Quantity too high", "quantity-too-high"


router = APIRouter()


@router.post("/v1/returns", status_code=201)
async def create_return(body: ReturnRequest) -> dict:
    if body.lines[0].quantity > 3:
        raise QuantityTooHigh(
            "Only 3 units were delivered.",
            field="lines[0].quantity",
            delivered=3,
            errors=[{"field": "lines[0].quantity", "location": "body", "reason": "more than delivered"}],
        )
    return {"order_id": body.order_id}


@router.get("/v1/returns")
async def list_returns(limit: int = Query(default=50, ge=1, le=200)) -> dict:
    return {"limit": limit}


@router.get("/teapot")
async def teapot() -> None:
    raise HTTPException(418, "short and stout")


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("db password is hunter2")


@pytest.fixture(scope="module")
def client():
    app = create_service_app(SETTINGS, title="http test", routers=[router], configure_logs=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://returns")


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"]
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["x-request-id"]
    if slug is not None:
        assert body["type"] == problem_type(slug)
    return body


def test_field_path_names_nested_fields():
    assert field_path(("body", "lines", 0, "quantity")) == ("body", "lines[0].quantity")
    assert field_path(("query", "limit")) == ("query", "limit")
    assert field_path(("body",)) == ("body", "body")
    assert field_path(("lines", 2, "sku")) == (None, "lines[2].sku")


def test_validation_errors_never_echo_the_input():
    errors = validation_errors([{"loc": ("body", "email"), "msg": "bad", "input": "jane@example.com"}])
    assert errors == [{"field": "email", "location": "body", "reason": "bad"}]


async def test_validation_error_names_the_field(client):
    response = await client.post("/v1/returns", json={"order_id": "o-1", "lines": [{"line_id": "l", "quantity": 0}]})
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"] == [
        {"field": "lines[0].quantity", "location": "body", "reason": "Input should be greater than 0"}
    ]


async def test_missing_fields_and_wrong_types_are_listed(client):
    response = await client.post("/v1/returns", json={"lines": [{"line_id": "l", "quantity": "many"}]})
    fields = {e["field"]: e["reason"] for e in assert_problem(response, 422)["errors"]}
    assert fields.keys() == {"order_id", "lines[0].quantity"}
    assert fields["order_id"] == "Field required"


async def test_query_parameter_errors_name_the_parameter(client):
    body = assert_problem(await client.get("/v1/returns?limit=0"), 422)
    assert body["errors"][0]["field"] == "limit" and body["errors"][0]["location"] == "query"


async def test_malformed_json_is_400_with_a_reason(client):
    response = await client.post(
        "/v1/returns", content=b'{"order_id": "o-1",', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 400, "malformed-json")
    assert "not valid JSON" in body["detail"]


async def test_a_body_that_is_not_utf8_is_malformed_json_naming_the_body(client):
    response = await client.post(
        "/v1/returns", content=b'{"order_id": "\xff"}', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 400, "malformed-json")
    assert body["errors"] == [
        {"field": "body", "location": "body", "reason": "not readable as JSON text (e.g. not UTF-8)"}
    ]


async def test_domain_errors_carry_their_members(client):
    response = await client.post("/v1/returns", json={"order_id": "o-1", "lines": [{"line_id": "l", "quantity": 5}]})
    body = assert_problem(response, 422, "quantity-too-high")
    assert body["field"] == "lines[0].quantity" and body["delivered"] == 3
    assert body["detail"] == "Only 3 units were delivered."


async def test_unknown_route_and_wrong_method(client):
    assert_problem(await client.get("/v1/nothing-here"), 404, "not-found")
    response = await client.delete("/v1/returns")
    assert_problem(response, 405, "method-not-allowed")
    # Every method of the path, though GET and POST are two routes (Starlette would name one).
    assert response.headers["allow"] == "GET, HEAD, POST"
    other = await client.put("/teapot")
    assert_problem(other, 405, "method-not-allowed")
    assert other.headers["allow"] == "GET, HEAD"


async def test_head_is_served_wherever_get_is(client):
    got = await client.get("/v1/returns", params={"limit": 7})
    head = await client.head("/v1/returns", params={"limit": 7})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"] == str(len(got.content))
    assert head.headers["content-type"] == got.headers["content-type"]
    # Its errors are GET's, without the body; a path without GET has no HEAD either.
    assert (await client.head("/v1/returns", params={"limit": 0})).status_code == 422
    assert (await client.head("/teapot")).status_code == 418
    assert (await client.head("/v1/nothing-here")).status_code == 404


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
async def test_a_body_that_is_not_json_is_a_415(client, content_type):
    response = await client.post("/v1/returns", content=b'{"order_id": "o-1"}', headers={"content-type": content_type})
    body = assert_problem(response, 415, "unsupported-media-type")
    assert response.headers["accept"] == "application/json, application/*+json"
    assert body["errors"][0]["field"] == "Content-Type" and "application/json" in body["detail"]


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8", "application/x+json"])
async def test_json_bodies_are_read(client, content_type):
    response = await client.post(
        "/v1/returns",
        content=b'{"order_id": "o-1", "lines": [{"line_id": "L1", "quantity": 1}]}',
        headers={"content-type": content_type},
    )
    assert response.status_code == 201, response.text


async def test_a_body_without_a_type_is_left_to_the_route(client):
    # No Content-Type declares no other media type: not a 415 (routes reading raw bodies rely on it).
    assert (await client.post("/v1/returns", content=b"{}")).status_code == 422


async def test_a_request_without_a_body_needs_no_content_type(client):
    assert (await client.get("/v1/returns", headers={"content-type": "text/plain"})).status_code == 200


async def test_http_exceptions_become_problems(client):
    body = assert_problem(await client.get("/teapot"), 418)
    assert body["detail"] == "short and stout" and body["type"] == "about:blank"


async def test_unexpected_errors_are_500_without_internals(client, caplog):
    body = assert_problem(await client.get("/boom"), 500, "internal-error")
    assert "hunter2" not in str(body) and "RuntimeError" not in str(body)
    [record] = [r for r in caplog.records if r.name == "shared.http"]
    assert record.exc_info is not None  # the traceback goes to the log


async def test_request_id_is_echoed_or_generated(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "req-123"})
    assert response.headers["x-request-id"] == "req-123"
    generated = (await client.get("/healthz")).headers["x-request-id"]
    assert len(generated) == 32
    hostile = (await client.get("/healthz", headers={"X-Request-ID": 'a" injected=1'})).headers["x-request-id"]
    assert hostile != 'a" injected=1' and len(hostile) == 32


async def test_body_over_the_limit_is_413_by_content_length(client):
    response = await client.post("/v1/returns", content=b"x" * 2000, headers={"content-type": "application/json"})
    body = assert_problem(response, 413, "payload-too-large")
    assert body["limit"] == 1024


async def test_chunked_body_over_the_limit_is_413(client):
    async def chunks():
        for _ in range(10):
            yield b" " * 200

    response = await client.post("/v1/returns", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload-too-large")


async def test_body_under_the_limit_passes(client):
    response = await client.post("/v1/returns", json={"order_id": "o-1", "lines": [{"line_id": "l", "quantity": 1}]})
    assert response.status_code == 201


async def test_openapi_documents_bearer_and_problems(client):
    schema = (await client.get("/openapi.json")).json()
    post = schema["paths"]["/v1/returns"]["post"]
    assert "application/problem+json" in post["responses"]["422"]["content"]
    assert "Problem" in schema["components"]["schemas"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]


async def test_both_413_paths_answer_the_same_problem(client):
    async def chunks():
        for _ in range(10):
            yield b" " * 200

    streamed = (await client.post("/v1/returns", content=chunks(), headers={"content-type": "application/json"})).json()
    declared = (
        await client.post("/v1/returns", content=b" " * 2000, headers={"content-type": "application/json"})
    ).json()
    for body in (streamed, declared):
        del body["request_id"]
    assert streamed == declared
