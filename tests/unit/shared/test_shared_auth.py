"""Bearer-JWT verification, roles and acting-for (docs/product.md §10)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import APIRouter, Depends

from shared.auth import CurrentPrincipal, Principal, Role, TokenVerifier, require_roles
from shared.http import Forbidden, Unauthorized
from shared.models import Actor
from shared.service import create_service_app
from shared.settings import CommonSettings
from shared.tokens import main as tokens_main
from shared.tokens import mint

SECRET = "unit-test-secret-" + "x" * 48  # 64 bytes: long enough even for HS512
SETTINGS = CommonSettings(service_name="returns", jwt_secret=SECRET)


def verifier(**overrides) -> TokenVerifier:
    args = {"algorithm": "HS256", "key": SECRET, "issuer": "returns-platform", "audience": "returns"} | overrides
    return TokenVerifier(**args)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def handmade(header: dict, claims: dict, sign=lambda signing_input: b"") -> str:
    signing_input = _b64(json.dumps(header).encode()) + b"." + _b64(json.dumps(claims).encode())
    return (signing_input + b"." + _b64(sign(signing_input))).decode()


def claims(**overrides) -> dict:
    now = int(datetime.now(UTC).timestamp())
    return {"iss": "returns-platform", "aud": "returns", "sub": "b-1", "role": "buyer", "exp": now + 600} | overrides


def pem_pair(private_key) -> tuple[bytes, bytes]:
    private = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


RSA_PRIVATE, RSA_PUBLIC = pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


# ---- good tokens ----------------------------------------------------------------------------


def test_good_hs256_token_gives_the_principal():
    principal = verifier().principal(mint(SETTINGS, "buyer", "b-1", "returns"))
    assert principal.subject == "b-1" and principal.role is Role.BUYER
    assert principal.actor == Actor(role="buyer", id="b-1")
    assert principal.acts_as(Role.BUYER) and not principal.acts_as(Role.AGENT) and principal.acting_for is None
    assert principal.claims["iss"] == "returns-platform"


@pytest.mark.parametrize(
    ("algorithm", "private_key"),
    [
        ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
        ("EdDSA", ed25519.Ed25519PrivateKey.generate()),
    ],
)
def test_asymmetric_algorithms_verify_with_the_public_key(algorithm, private_key):
    private, public = pem_pair(private_key)
    settings = CommonSettings(
        service_name="refunds", jwt_algorithm=algorithm, jwt_public_key=public.decode().replace("\n", "\\n")
    )  # escaped, as in env files
    token = mint(private, "seller", "s-1", "refunds", algorithm=algorithm)
    principal = TokenVerifier.from_settings(settings).principal(token)
    assert principal.actor == Actor(role="seller", id="s-1")


# ---- bad tokens -----------------------------------------------------------------------------


def expect_401(token: str, v: TokenVerifier | None = None) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        (v or verifier()).verify(token)
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")
    return caught.value


def test_expired_token_is_refused():
    token = mint(SETTINGS, "buyer", "b-1", "returns", ttl=60, now=datetime.now(UTC) - timedelta(hours=1))
    assert "expired" in expect_401(token).detail


def test_token_without_exp_is_refused():
    assert "exp" in expect_401(mint(SETTINGS, "buyer", "b-1", "returns", ttl=None)).detail


def test_token_for_another_service_is_refused():
    assert "not meant for this service" in expect_401(mint(SETTINGS, "buyer", "b-1", "refunds")).detail


def test_token_from_another_issuer_is_refused():
    expect_401(mint(SETTINGS, "buyer", "b-1", "returns", issuer="evil"))


def test_token_signed_with_another_secret_is_refused():
    expect_401(mint("another-secret-that-is-also-long-enough!!", "buyer", "b-1", "returns"))


def test_alg_none_is_refused():
    expect_401(handmade({"alg": "none", "typ": "JWT"}, claims()))


def test_other_hmac_algorithm_than_the_pinned_one_is_refused():
    expect_401(mint(SECRET, "buyer", "b-1", "returns", algorithm="HS512"))


def test_hs256_signed_with_the_rsa_public_key_is_refused_when_rs256_is_pinned():
    forged = handmade(
        {"alg": "HS256", "typ": "JWT"}, claims(), lambda data: hmac.new(RSA_PUBLIC, data, hashlib.sha256).digest()
    )
    expect_401(forged, verifier(algorithm="RS256", key=RSA_PUBLIC.decode()))


def test_rs256_token_is_refused_when_hs256_is_pinned():
    expect_401(mint(RSA_PRIVATE, "buyer", "b-1", "returns", algorithm="RS256"))


def test_a_public_key_cannot_be_configured_as_an_hmac_secret():
    with pytest.raises(jwt.InvalidKeyError):
        verifier(key=RSA_PUBLIC.decode())


def test_missing_key_or_unknown_algorithm_fail_at_start_up():
    with pytest.raises(ValueError, match="JWT_SECRET"):
        TokenVerifier.from_settings(CommonSettings(service_name="returns"))
    with pytest.raises(ValueError, match="JWT_PUBLIC_KEY"):
        TokenVerifier.from_settings(CommonSettings(service_name="returns", jwt_algorithm="RS256"))
    with pytest.raises(ValueError, match="unsupported"):
        verifier(algorithm="none")


@pytest.mark.parametrize(
    "overrides", [{"sub": None}, {"sub": ""}, {"role": None}, {"role": "admin"}, {"role": ["agent"]}]
)
def test_token_without_a_valid_sub_or_role_is_refused(overrides):
    expect_401(mint(SETTINGS, "buyer", "b-1", "returns", claims=overrides))  # None leaves the claim out


def test_garbage_is_refused():
    expect_401("not-a-jwt")


# ---- acting for -----------------------------------------------------------------------------


def test_service_token_may_act_for_a_seller():
    token = mint(SETTINGS, "service", "orders-system", "returns")
    principal = verifier().principal(token, acting_for="seller:s-1")
    assert principal.role is Role.SERVICE
    assert principal.actor == Actor(role="seller", id="s-1")
    assert principal.acts_as(Role.SELLER) and not principal.acts_as(Role.SERVICE)
    assert principal.ref == "service:orders-system>seller:s-1"


def test_only_service_tokens_may_act_for_someone():
    with pytest.raises(Forbidden):
        verifier().principal(mint(SETTINGS, "buyer", "b-1", "returns"), acting_for="seller:s-1")


@pytest.mark.parametrize("header", ["seller", "service:other", "platform:p", "seller:", "seller:a b", ":s-1"])
def test_acting_for_must_name_a_buyer_seller_or_agent(header):
    with pytest.raises(Forbidden):
        verifier().principal(mint(SETTINGS, "service", "svc", "returns"), acting_for=header)


def test_may_access_own_data_only_unless_agent_or_service():
    buyer = Principal("b-1", Role.BUYER)
    seller = Principal("s-1", Role.SELLER)
    assert buyer.may_access(buyer_id="b-1", seller_id="s-9")
    assert not buyer.may_access(buyer_id="b-2", seller_id="b-1")
    assert seller.may_access(buyer_id="b-1", seller_id="s-1")
    assert not seller.may_access(buyer_id="s-1")
    assert Principal("a-1", Role.AGENT).may_access() and Principal("svc", Role.SERVICE).may_access()
    acting = Principal("svc", Role.SERVICE, acting_for=Actor(role="buyer", id="b-1"))
    assert acting.may_access(buyer_id="b-1") and not acting.may_access(buyer_id="b-2")


# ---- over HTTP ------------------------------------------------------------------------------

router = APIRouter()


@router.get("/whoami")
async def whoami(principal: CurrentPrincipal) -> dict:
    return {"actor": principal.actor.model_dump(), "ref": principal.ref}


@router.get("/support", dependencies=[Depends(require_roles("agent", Role.SERVICE))])
async def support() -> dict:
    return {"ok": True}


@pytest.fixture(scope="module")
def client():
    app = create_service_app(SETTINGS, title="auth test", routers=[router], configure_logs=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://returns")


def bearer(role: str, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(SETTINGS, role, sub, 'returns')}"}


async def test_missing_token_is_401_problem_with_bearer_challenge(client):
    for headers in ({}, {"Authorization": "Basic dTpw"}):
        response = await client.get("/whoami", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/unauthorized")


async def test_invalid_token_is_401_with_invalid_token_error(client):
    response = await client.get("/whoami", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_acting_for_header_over_http(client):
    response = await client.get("/whoami", headers=bearer("service", "orders") | {"X-Acting-For": "seller:s-1"})
    assert response.json() == {"actor": {"role": "seller", "id": "s-1"}, "ref": "service:orders>seller:s-1"}
    response = await client.get("/whoami", headers=bearer("buyer", "b-1") | {"X-Acting-For": "seller:s-1"})
    assert response.status_code == 403


async def test_wrong_role_is_403(client):
    assert (await client.get("/support", headers=bearer("buyer", "b-1"))).status_code == 403
    assert (await client.get("/support", headers=bearer("seller", "s-1"))).status_code == 403
    assert (await client.get("/support", headers=bearer("service", "svc"))).status_code == 200
    # a service acting for a seller is a seller here
    acting = bearer("service", "svc") | {"X-Acting-For": "seller:s-1"}
    assert (await client.get("/support", headers=acting)).status_code == 403


async def test_agent_requests_are_audited_without_personal_data(client, caplog):
    caplog.set_level(logging.INFO, logger="audit")
    response = await client.get(
        "/support?email=jane@example.com", headers=bearer("agent", "a-7") | {"X-Request-ID": "req-42"}
    )
    assert response.status_code == 200
    [record] = [r for r in caplog.records if r.name == "audit"]
    assert (record.principal, record.method, record.path, record.request_id) == (
        "agent:a-7",
        "GET",
        "/support",
        "req-42",
    )
    assert "jane" not in json.dumps({k: str(v) for k, v in vars(record).items()})


def test_mint_cli_prints_a_verifiable_token(monkeypatch, capsys):
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("JWT_ISSUER", "returns-platform")
    assert tokens_main(["--role", "seller", "--sub", "s-1", "--aud", "returns", "--ttl", "60"]) == 0
    principal = verifier().principal(capsys.readouterr().out.strip())
    assert principal.actor == Actor(role="seller", id="s-1")
    assert principal.claims["exp"] - principal.claims["iat"] == 60


def test_a_remembered_token_is_verified_again_once_it_expires(monkeypatch):
    v = verifier(leeway=0)
    now = int(datetime.now(UTC).timestamp())
    token = jwt.encode(claims(exp=now + 60), SECRET, algorithm="HS256")
    full_checks = []
    verify_fully = v._verify
    monkeypatch.setattr(v, "_verify", lambda t, key=None: full_checks.append(t) or verify_fully(t, key))
    assert v.verify(token)["sub"] == "b-1"
    assert v.verify(token)["sub"] == "b-1"
    assert len(full_checks) == 1  # the second answer came from memory
    monkeypatch.setattr("shared.auth.time.time", lambda: now + 60.0)
    monkeypatch.setattr(
        "jwt.api_jwt.datetime", type("Late", (), {"now": staticmethod(lambda tz: datetime.fromtimestamp(now + 60, tz))})
    )
    with pytest.raises(Unauthorized, match="expired"):
        v.verify(token)
    assert len(full_checks) == 2


def test_remembered_claims_are_a_copy():
    v = verifier()
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    v.verify(token)["role"] = "agent"
    assert v.verify(token)["role"] == "buyer"
