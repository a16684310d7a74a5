"""Development and test tokens: `mint()` and a CLI printing a token signed with the configured key.

    uv run python -m shared.tokens --role buyer --sub b-1 --aud returns [--ttl 3600]

Reads JWT_ALGORITHM, JWT_SECRET and JWT_ISSUER like the services do. Asymmetric algorithms need the
private key: `--private-key PATH` or JWT_PRIVATE_KEY (services only ever hold the public key).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from shared.auth import SYMMETRIC, Role
from shared.settings import CommonSettings

DEFAULT_ISSUER = CommonSettings.model_fields["jwt_issuer"].default


def mint(
    settings_or_key: CommonSettings | str | bytes | Any,
    role: Role | str,
    sub: str | None,
    aud: str | None,
    ttl: int | None = 3600,
    *,
    algorithm: str | None = None,
    issuer: str | None = None,
    now: datetime | None = None,
    claims: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """A signed token. `settings_or_key` is CommonSettings (HS* secret) or a secret/private key.

    `ttl=None` leaves out `exp`; a claim set to None in `claims` is left out (tests of bad tokens).
    """
    if isinstance(settings_or_key, CommonSettings):
        algorithm = algorithm or settings_or_key.jwt_algorithm
        issuer = issuer or settings_or_key.jwt_issuer
        if algorithm not in SYMMETRIC:
            raise ValueError(f"{algorithm} needs a private key; settings only hold the public key")
        key: Any = settings_or_key.jwt_secret
        if not key:
            raise ValueError("JWT_SECRET is not set")
    else:
        key = settings_or_key
        if algorithm is None:
            if not isinstance(key, str | bytes) or "-----BEGIN" in str(key):
                raise ValueError("pass algorithm= with an asymmetric private key")
            algorithm = "HS256"
    at = now or datetime.now(UTC)
    payload: dict[str, Any] = {"iss": issuer or DEFAULT_ISSUER, "aud": aud, "sub": sub, "role": str(role), "iat": at}
    if ttl is not None:
        payload["exp"] = at + timedelta(seconds=ttl)
    payload.update(claims or {})
    payload = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(payload, key, algorithm=algorithm, headers=dict(headers or {}) or None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.tokens", description=__doc__.splitlines()[0])
    parser.add_argument("--role", required=True, choices=[role.value for role in Role])
    parser.add_argument("--sub", required=True, help="subject: the buyer, seller, agent or system id")
    parser.add_argument("--aud", required=True, help="audience: the service name, e.g. returns")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    parser.add_argument("--issuer", help="default: JWT_ISSUER")
    parser.add_argument("--private-key", help="PEM file for RS/ES/EdDSA (default: $JWT_PRIVATE_KEY)")
    parser.add_argument(
        "--claim", action="append", default=[], metavar="NAME=VALUE", help="an extra string claim (repeatable)"
    )
    args = parser.parse_args(argv)

    settings = CommonSettings()
    extra = dict(item.split("=", 1) for item in args.claim)
    if settings.jwt_algorithm in SYMMETRIC:
        key: Any = settings
    else:
        source = args.private_key or os.environ.get("JWT_PRIVATE_KEY")
        if not source:
            parser.error(f"JWT_ALGORITHM={settings.jwt_algorithm} needs --private-key or JWT_PRIVATE_KEY")
        key = source.replace("\\n", "\n") if "-----BEGIN" in source else open(source).read()
    try:
        token = mint(
            key,
            args.role,
            args.sub,
            args.aud,
            args.ttl,
            algorithm=settings.jwt_algorithm,
            issuer=args.issuer or settings.jwt_issuer,
            claims=extra,
        )
    except ValueError as exc:
        parser.error(str(exc))
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
