"""Idempotency pieces that need no database: body fingerprints and key validation."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from shared.idempotency import InvalidIdempotencyKey, StoredResponse, check_key, fingerprint


class Body(BaseModel):
    order_id: str
    amount: int


def test_fingerprint_ignores_key_order_and_spacing():
    a = fingerprint(b'{"order_id": "o-1", "amount": 5}', method="POST", path="/v1/x")
    b = fingerprint(b'{"amount":5,"order_id":"o-1"}', method="POST", path="/v1/x")
    assert a == b == fingerprint(Body(order_id="o-1", amount=5), method="POST", path="/v1/x")
    assert a == fingerprint({"amount": 5, "order_id": "o-1"}, method="POST", path="/v1/x")


def test_a_lone_surrogate_in_a_json_body_has_a_fingerprint_of_its_own():
    lone = fingerprint(b'{"x": "\\ud800"}', method="POST", path="/v1/x")  # valid JSON, not encodable UTF-8
    assert lone != fingerprint(b'{"x": "\\ud801"}', method="POST", path="/v1/x")
    assert fingerprint(b'{"x": "\xc3\xa9"}') == fingerprint({"x": "\u00e9"})  # unchanged for real text


def test_fingerprint_differs_by_body_path_and_method():
    base = fingerprint(b'{"amount": 5}', method="POST", path="/v1/orders/o-1/refunds")
    assert base != fingerprint(b'{"amount": 6}', method="POST", path="/v1/orders/o-1/refunds")
    assert base != fingerprint(b'{"amount": 5}', method="POST", path="/v1/orders/o-2/refunds")
    assert base != fingerprint(b'{"amount": 5}', method="PUT", path="/v1/orders/o-1/refunds")
    assert fingerprint(b"not json") != fingerprint(b"not  json")
    assert fingerprint(b"") == fingerprint(None)


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\t", "naïve"])
def test_bad_keys_are_refused(key):
    with pytest.raises(InvalidIdempotencyKey) as caught:
        check_key(key)
    assert caught.value.status == 422


def test_good_keys_pass():
    assert check_key("0b6f3c1e-8c1f-4d0e-9f57-4b4c2f1f0a77") == "0b6f3c1e-8c1f-4d0e-9f57-4b4c2f1f0a77"
    assert check_key("k" * 255)


def test_replay_marks_the_response():
    response = StoredResponse(
        201, b'{"id":"r-1"}', [("content-type", "application/json"), ("location", "/v1/r/r-1")]
    ).to_response()
    assert response.status_code == 201 and response.body == b'{"id":"r-1"}'
    assert response.headers["location"] == "/v1/r/r-1" and response.headers["idempotent-replayed"] == "true"
