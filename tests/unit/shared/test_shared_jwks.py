"""JWKS keys (JWT_JWKS_URL): a real HTTP server publishes the set; rotation has no 401 window."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import APIRouter
from jwt import PyJWKClient

from shared.auth import CurrentPrincipal, TokenVerifier, jwks_client
from shared.http import ServiceUnavailable, Unauthorized
from shared.service import create_service_app
from shared.settings import CommonSettings


class JwksServer:
    """Serves `keys` as a JWKS over real HTTP on a free localhost port; counts the fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        published = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                published.fetches += 1
                body = json.dumps({"keys": published.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def publish(self, *keys: tuple[str, Any]) -> None:
        self.keys = [public_jwk(kid, private) for kid, private in keys]


def public_jwk(kid: str, private: Any) -> dict[str, Any]:
    public = private.public_key()
    algorithm = jwt.algorithms.RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else jwt.algorithms.ECAlgorithm
    return algorithm.to_jwk(public, as_dict=True) | {"kid": kid, "use": "sig"}


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def token(private: Any, kid: str | None, algorithm: str, **overrides: Any) -> str:
    now = int(datetime.now(UTC).timestamp())
    claims = {"iss": "returns-platform", "aud": "returns", "sub": "b-1", "role": "buyer", "exp": now + 600}
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims | overrides, private, algorithm=algorithm, headers=headers)


def verifier_for(server: JwksServer, algorithm: str) -> TokenVerifier:
    settings = CommonSettings(service_name="returns", jwt_algorithm=algorithm, jwt_jwks_url=server.url)
    return TokenVerifier.from_settings(settings)


RSA_OLD, RSA_NEW = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
EC_OLD, EC_NEW = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
PAIRS = {"RS256": (RSA_OLD, RSA_NEW), "ES256": (EC_OLD, EC_NEW)}


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_rotation_accepts_every_published_key_then_refuses_a_withdrawn_one(jwks, algorithm):
    old, new = PAIRS[algorithm]
    jwks.publish(("k-old", old), ("k-new", new))  # the issuer rotates: both published
    v = verifier_for(jwks, algorithm)
    assert v.principal(token(old, "k-old", algorithm)).subject == "b-1"
    assert v.principal(token(new, "k-new", algorithm, sub="b-2")).subject == "b-2"
    assert jwks.fetches == 1  # one fetch served both keys: the set is cached

    jwks.publish(("k-new", new))  # the old key is withdrawn
    v.refresh_keys()  # what the cache lifespan does on its own, injected instead of waited for
    with pytest.raises(Unauthorized) as refused:
        v.principal(token(old, "k-old", algorithm, sub="b-3"))
    assert refused.value.status == 401 and "kid" in (refused.value.detail or "")
    assert v.principal(token(new, "k-new", algorithm, sub="b-4")).subject == "b-4"


def test_a_key_published_later_is_accepted_without_waiting_for_the_cache(jwks):
    jwks.publish(("k-old", RSA_OLD))
    # No refetch cooldown (it is 30 s by default): the clock is not what this test waits on.
    keys = jwks_client(jwks.url, cooldown_seconds=0)
    v = TokenVerifier(algorithm="RS256", issuer="returns-platform", audience="returns", jwks=keys)
    assert v.principal(token(RSA_OLD, "k-old", "RS256")).subject == "b-1"
    jwks.publish(("k-old", RSA_OLD), ("k-new", RSA_NEW))
    assert v.principal(token(RSA_NEW, "k-new", "RS256", sub="b-2")).subject == "b-2"  # unknown kid: refetched
    assert jwks.fetches == 2


@pytest.mark.parametrize("kid", ["k-unknown", None])
def test_unknown_or_missing_kid_is_refused(jwks, kid):
    jwks.publish(("k-old", RSA_OLD))
    with pytest.raises(Unauthorized):
        verifier_for(jwks, "RS256").principal(token(RSA_NEW, kid, "RS256"))


def test_the_algorithm_stays_pinned_whatever_the_set_holds(jwks):
    jwks.publish(("k-rsa", RSA_OLD), ("k-ec", EC_OLD))
    v = verifier_for(jwks, "RS256")
    with pytest.raises(Unauthorized):  # a published EC key, but RS256 is the pinned algorithm
        v.principal(token(EC_OLD, "k-ec", "ES256"))
    with pytest.raises(Unauthorized):  # the RSA key's kid on an ES256 signature
        v.principal(token(EC_OLD, "k-rsa", "ES256"))
    with pytest.raises(Unauthorized):  # right kid, signed by another key
        v.principal(token(RSA_NEW, "k-rsa", "RS256"))


def test_jwks_needs_an_asymmetric_algorithm(jwks):
    with pytest.raises(ValueError, match="asymmetric"):
        verifier_for(jwks, "HS256")


def test_an_unreachable_jwks_answers_503_not_401(jwks):
    jwks.server.shutdown()
    jwks.server.server_close()
    with pytest.raises(ServiceUnavailable):
        verifier_for(jwks, "RS256").principal(token(RSA_OLD, "k-old", "RS256"))


router = APIRouter()


@router.get("/v1/me")
async def me(principal: CurrentPrincipal) -> dict[str, str]:
    return {"sub": principal.subject}


async def test_over_http_unknown_kid_is_a_401_problem(jwks):
    jwks.publish(("k-old", RSA_OLD), ("k-new", RSA_NEW))
    settings = CommonSettings(service_name="returns", jwt_algorithm="RS256", jwt_jwks_url=jwks.url, cursor_secret="c")
    app = create_service_app(settings, title="t", routers=[router], configure_logs=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://returns") as client:
        for private, kid in ((RSA_OLD, "k-old"), (RSA_NEW, "k-new")):
            ok = await client.get("/v1/me", headers={"Authorization": f"Bearer {token(private, kid, 'RS256')}"})
            assert ok.status_code == 200 and ok.json() == {"sub": "b-1"}
        bad = await client.get("/v1/me", headers={"Authorization": f"Bearer {token(RSA_NEW, 'k-gone', 'RS256')}"})
    assert bad.status_code == 401 and bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["type"].endswith("/unauthorized") and "WWW-Authenticate" in bad.headers


async def test_the_set_is_fetched_off_the_event_loop(jwks):
    jwks.publish(("k-old", RSA_OLD))
    fetched_on: list[int] = []

    class Recording(PyJWKClient):
        def fetch_data(self) -> Any:
            fetched_on.append(threading.get_ident())
            return super().fetch_data()

    keys = Recording(jwks.url, cache_jwk_set=True, lifespan=300, timeout=5)
    v = TokenVerifier(algorithm="RS256", issuer="returns-platform", audience="returns", jwks=keys)
    assert (await v.principal_async(token(RSA_OLD, "k-old", "RS256"))).subject == "b-1"
    assert fetched_on and threading.get_ident() not in fetched_on
    with pytest.raises(Unauthorized):
        await v.principal_async("not-a-jwt")
