"""Who is calling (docs/product.md §10): bearer-JWT verification, roles, acting-for, and the agent audit."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt import PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError

from shared.http import Forbidden, ServiceUnavailable, Unauthorized, current_request_id
from shared.models import Actor
from shared.settings import CommonSettings

audit_log = logging.getLogger("audit")
log = logging.getLogger("shared.auth")

SYMMETRIC = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
# Verified tokens remembered per verifier: clients send the same token on every call until it
# expires, and verifying (two JSON parses, the signature, every claim) is per-request CPU.
VERIFIED_TOKENS = 1024


class Role(StrEnum):
    BUYER = "buyer"
    SELLER = "seller"
    AGENT = "agent"
    SERVICE = "service"


_ROLE_NAMES = tuple(role.value for role in Role)
# A service token may act for these; never for another service or the platform itself.
ACTING_FOR_ROLES = frozenset({Role.BUYER, Role.SELLER, Role.AGENT})
_ACTING_FOR = re.compile(r"^(buyer|seller|agent):([A-Za-z0-9._\-]{1,128})$")


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller. `actor` is whom the request acts for (the token holder by default)."""

    subject: str
    role: Role
    acting_for: Actor | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> Actor:
        return self.acting_for or Actor(role=self.role.value, id=self.subject)

    @property
    def ref(self) -> str:
        """`role:id` of the token holder, plus `>role:id` when acting for someone: logs, keys."""
        own = f"{self.role.value}:{self.subject}"
        return f"{own}>{self.acting_for.role}:{self.acting_for.id}" if self.acting_for else own

    def acts_as(self, role: Role) -> bool:
        """Whether the actor (the one acted for, else the token holder) has `role`. `Role.SERVICE`:
        a system calling on its own account (not acting for anyone)."""
        return self.actor.role == role

    def may_access(self, *, buyer_id: str | None = None, seller_id: str | None = None) -> bool:
        """Buyers see only their own, sellers only theirs; agents and services see everything."""
        actor = self.actor
        if actor.role in (Role.AGENT, Role.SERVICE):
            return True
        if actor.role == Role.BUYER:
            return buyer_id is not None and actor.id == buyer_id
        if actor.role == Role.SELLER:
            return seller_id is not None and actor.id == seller_id
        return False


def _pem(value: str) -> str:
    """A PEM given inline (with real or escaped newlines) or as a path to a file."""
    if "-----BEGIN" in value:
        return value.replace("\\n", "\n")
    return Path(value).read_text()


def jwks_client(url: str, cache_seconds: float = 300, cooldown_seconds: float = 30) -> PyJWKClient:
    """PyJWT's JWKS client: the set is fetched once and kept `cache_seconds`; a token whose `kid`
    is not in the kept set makes it fetch again (at most once per `cooldown_seconds`, so a flood of
    made-up kids costs one fetch), so a key the issuer starts publishing is accepted without
    waiting for the cache, and one it stops publishing is refused after the next refresh."""
    return PyJWKClient(url, cache_jwk_set=True, lifespan=cache_seconds, timeout=5, cooldown_duration=cooldown_seconds)


class TokenVerifier:
    """Verifies tokens for one audience with one pinned algorithm and a key, or the keys of a JWKS.

    With a JWKS every key it currently lists is valid (picked by the token's `kid`), so an issuer
    rotates by publishing the new key next to the old one: no 401 window. The algorithm stays
    pinned whatever the JWKS or the token header say."""

    def __init__(
        self,
        *,
        algorithm: str,
        key: Any = None,
        issuer: str,
        audience: str,
        leeway: float = 10.0,
        jwks: PyJWKClient | None = None,
    ) -> None:
        if algorithm not in SYMMETRIC | ASYMMETRIC:
            raise ValueError(f"unsupported JWT algorithm {algorithm!r}")
        if jwks is not None and algorithm not in ASYMMETRIC:
            raise ValueError(f"a JWKS holds public keys: JWT_ALGORITHM must be asymmetric, not {algorithm}")
        if not key and jwks is None:
            raise ValueError(f"no key configured for JWT algorithm {algorithm}")
        if isinstance(key, str) and algorithm in ASYMMETRIC:
            key = _pem(key)
        # Parse once at start-up: a wrong key type for the algorithm fails here, not per request
        # (and an HMAC "secret" that is really a PEM public key is refused: no HS/RS confusion).
        self._key = jwt.get_algorithm_by_name(algorithm).prepare_key(key) if jwks is None else None
        self._jwks = jwks
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: CommonSettings, audience: str | None = None) -> TokenVerifier:
        algorithm = settings.jwt_algorithm
        audience = audience or settings.service_name
        if settings.jwt_jwks_url:
            jwks = jwks_client(settings.jwt_jwks_url, settings.jwt_jwks_cache_seconds)
            return cls(algorithm=algorithm, issuer=settings.jwt_issuer, audience=audience, jwks=jwks)
        key = settings.jwt_secret if algorithm in SYMMETRIC else settings.jwt_public_key
        if not key:
            needed = "JWT_SECRET" if algorithm in SYMMETRIC else "JWT_PUBLIC_KEY"
            raise ValueError(f"{needed} must be set for JWT_ALGORITHM={algorithm}")
        return cls(algorithm=algorithm, key=key, issuer=settings.jwt_issuer, audience=audience)

    def refresh_keys(self) -> None:
        """Fetch the JWKS now (what the cache lifespan does by itself) and forget verified tokens,
        so a token signed by a key no longer published is refused from this moment."""
        if self._jwks is not None:
            self._jwks.get_jwk_set(refresh=True)
            self._verified.clear()

    def _key_for(self, token: str) -> Any:
        if self._jwks is None:
            return self._key
        try:
            return self._jwks.get_signing_key_from_jwt(token).key
        except PyJWKClientConnectionError:
            log.warning("JWKS unreachable", exc_info=True)
            raise ServiceUnavailable("The token issuer's keys cannot be fetched right now; retry.") from None
        except PyJWKClientError:
            raise Unauthorized("The token is not signed by a key the issuer publishes (`kid`).") from None
        except jwt.PyJWTError:
            raise Unauthorized("The token is invalid.") from None

    def verify(self, token: str, key: Any = None) -> dict[str, Any]:
        """The token's claims, or Unauthorized saying (without internals) what is wrong.

        A token verified before is answered from memory while its `exp` (with the leeway) is still
        ahead: nothing else about a verified token can change (signature, issuer, audience, role,
        and `nbf` / `iat` were already in the past). Past `exp` it is verified again from scratch,
        so it fails exactly as a new token would."""
        known = self._verified.get(token)
        if known is not None:
            if int(known["exp"]) > time.time() - self.leeway:  # PyJWT's own test of `exp`
                self._verified.move_to_end(token)
                return dict(known)
            del self._verified[token]
        claims = self._verify(token, key)
        if isinstance(claims.get("exp"), int | float) and not isinstance(claims["exp"], bool):
            self._verified[token] = dict(claims)
            if len(self._verified) > VERIFIED_TOKENS:
                self._verified.popitem(last=False)
        return claims

    def _verify(self, token: str, key: Any = None) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != self.algorithm:
                raise Unauthorized("The token is not signed with the expected algorithm.")
            if key is None:
                key = self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The token has expired.") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized(f"The token is not meant for this service ({self.audience}).") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("The token's issuer is not trusted.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"The token lacks the `{exc.claim}` claim.") from None
        except jwt.PyJWTError:
            raise Unauthorized("The token is invalid.") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Unauthorized("The token lacks the `sub` claim.")
        if claims.get("role") not in _ROLE_NAMES:
            raise Unauthorized("The token's `role` claim is missing or unknown.")
        return claims

    async def principal_async(self, token: str, acting_for: str | None = None) -> Principal:
        """`principal`, with the JWKS key of a token not verified before looked up in a thread:
        the lookup may fetch the set over the network, which must not block the event loop."""
        key = None
        if self._jwks is not None and token not in self._verified:
            key = await asyncio.to_thread(self._key_for, token)
        return self.principal(token, acting_for, key)

    def principal(self, token: str, acting_for: str | None = None, key: Any = None) -> Principal:
        claims = self.verify(token, key)
        role = Role(claims["role"])
        actor = None
        if acting_for is not None:
            if role != Role.SERVICE:
                raise Forbidden("Only service tokens may act for someone else (X-Acting-For).")
            match = _ACTING_FOR.match(acting_for)
            if match is None:
                raise Forbidden("X-Acting-For must be `<buyer|seller|agent>:<id>`.")
            actor = Actor(role=match.group(1), id=match.group(2))
        return Principal(subject=claims["sub"], role=role, acting_for=actor, claims=claims)


_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="JWT signed by the platform: `aud` is the service name, `role` one of buyer, seller, agent, service.",
)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_acting_for: Annotated[
        str | None,
        Header(
            alias="X-Acting-For",
            max_length=200,
            description="Service tokens only: the actor the call is made for, e.g. `seller:s-1`.",
        ),
    ] = None,
) -> Principal:
    if credentials is None:
        raise Unauthorized("A bearer token is required.", error=None)
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        raise RuntimeError("app.state.token_verifier is not set (use create_service_app)")
    principal = await verifier.principal_async(credentials.credentials, x_acting_for)
    if principal.acts_as(Role.AGENT):
        # Agents see everything, so what they look at is recorded. Ids only, no personal data.
        audit_log.info(
            "agent access",
            extra={
                "audit": True,
                "principal": principal.ref,
                "method": request.method,
                "path": request.url.path,
                "request_id": current_request_id(),
            },
        )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role | str) -> Callable[..., Awaitable[Principal]]:
    """Dependency admitting only these (effective) roles: `Depends(require_roles("seller", "agent"))`."""
    allowed = frozenset(Role(role) for role in roles)
    names = ", ".join(sorted(allowed))

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.actor.role not in allowed:
            raise Forbidden(f"This operation is for: {names}.")
        return principal

    return dependency
