"""The marketplaces one deployment serves: load and validate the marketplaces file, look a code up.

The file is YAML (docs/configuration.md): `marketplaces: {CODE: profile}` with the profile of
shared/marketplace_models.py. It either stands on its own, or starts with `extends: shipped` and
then only names what differs from the shipped profiles (shared/marketplaces.yaml), key by key; a
code the shipped file lacks must then be complete. A file that does not validate stops the service
at start-up with a message naming the key (`MarketplaceConfigError`).

Every service installs the registry at start-up (shared/service.py); pure code that only has a
code at hand (the business-day calendar) reads it through `current()`. The registry is immutable
configuration, read once, like the holiday tables.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shared.marketplace_models import Marketplace
from shared.rules import FieldProblem, PermanentError, RulesBroken

SHIPPED_FILE = Path(__file__).with_name("marketplaces.yaml")
_TOP_LEVEL = frozenset({"extends", "marketplaces"})


class MarketplaceConfigError(Exception):
    """The marketplaces file is unreadable or breaks a rule: each problem names its key."""


class UnknownMarketplace(RulesBroken, PermanentError):
    """An order (or a request) names a marketplace this deployment does not serve.

    A 422 on `marketplace` over HTTP; an event naming it is parked at once (replayable once an
    operator adds the marketplace)."""

    def __init__(self, code: str, known: Iterator[str] | list[str], field: str = "marketplace") -> None:
        self.code = code
        super().__init__(
            [FieldProblem(field, f"unknown marketplace {code!r}; this deployment serves {', '.join(known)}")]
        )


class Marketplaces(Mapping[str, Marketplace]):
    """Code -> rule set, immutable. `get(code)` refuses a code it does not know."""

    def __init__(self, profiles: Mapping[str, Marketplace]) -> None:
        self._profiles = dict(sorted(profiles.items()))

    def __getitem__(self, code: str) -> Marketplace:
        return self._profiles[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._profiles)

    def __len__(self) -> int:
        return len(self._profiles)

    def require(self, code: str, field: str = "marketplace") -> Marketplace:
        """The rule set of `code`, or UnknownMarketplace naming `field`."""
        profile = self._profiles.get(code)
        if profile is None:
            raise UnknownMarketplace(code, list(self._profiles), field)
        return profile

    def overridden(self, **blocks: Mapping[str, Any]) -> Marketplaces:
        """Every profile with the given fields of its blocks replaced (`returns={"window_days": 60}`):
        how a service applies a deployment-wide setting on top of the file. Validated again."""
        changed = {}
        for code, profile in self._profiles.items():
            data = profile.model_dump()
            for block, values in blocks.items():
                if values:
                    data[block] = {**data[block], **values}
            try:
                changed[code] = Marketplace.model_validate(data)
            except ValidationError as exc:
                raise MarketplaceConfigError(_describe(exc, f"settings overriding marketplace {code}")) from exc
        return Marketplaces(changed)


def _describe(exc: ValidationError, where: str, prefix: tuple[str | int, ...] = ()) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in (*prefix, *error["loc"])) or "(top level)"
        lines.append(f"  {key}: {error['msg']}")
    return f"{where}:\n" + "\n".join(lines)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MarketplaceConfigError(f"marketplaces file {path}: cannot read it ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise MarketplaceConfigError(f"marketplaces file {path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise MarketplaceConfigError(f"marketplaces file {path}: must be a mapping with a `marketplaces` key")
    unknown = sorted(set(map(str, data)) - _TOP_LEVEL)
    if unknown:
        raise MarketplaceConfigError(
            f"marketplaces file {path}:\n  {unknown[0]}: unknown key (expected one of {', '.join(sorted(_TOP_LEVEL))})"
        )
    if data.get("extends") not in (None, "shipped"):
        raise MarketplaceConfigError(f"marketplaces file {path}:\n  extends: must be `shipped` or absent")
    profiles = data.get("marketplaces")
    if not isinstance(profiles, dict) or not profiles:
        raise MarketplaceConfigError(f"marketplaces file {path}:\n  marketplaces: must map codes to rule sets")
    return data


def _merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def load(path: str | Path | None = None) -> Marketplaces:
    """The marketplaces `path` describes (the shipped ones when None); MarketplaceConfigError otherwise."""
    if path is None:
        return shipped()
    where = Path(path)
    data = _read(where)
    base = {code: p.model_dump(mode="json") for code, p in shipped().items()} if data.get("extends") else {}
    profiles = {}
    for code, given in data["marketplaces"].items():
        if not isinstance(given, Mapping):
            raise MarketplaceConfigError(f"marketplaces file {where}:\n  marketplaces.{code}: must be a mapping")
        raw = _merged(base.get(str(code), {}), given) | {"code": str(code)}
        if given.get("code", code) != code:
            problem = f"marketplaces.{code}.code: differs from its key"
            raise MarketplaceConfigError(f"marketplaces file {where}:\n  {problem}")
        try:
            profiles[str(code)] = Marketplace.model_validate(raw)
        except ValidationError as exc:
            raise MarketplaceConfigError(_describe(exc, f"marketplaces file {where}", ("marketplaces", code))) from exc
    for code, profile in base.items():
        profiles.setdefault(code, Marketplace.model_validate(profile))
    return Marketplaces(profiles)


@lru_cache(maxsize=1)
def shipped() -> Marketplaces:
    """The profiles this project ships (US, GB, DE, JP, CN)."""
    data = _read(SHIPPED_FILE)
    try:
        profiles = data["marketplaces"].items()
        return Marketplaces({str(c): Marketplace.model_validate({**p, "code": str(c)}) for c, p in profiles})
    except ValidationError as exc:
        raise MarketplaceConfigError(_describe(exc, f"marketplaces file {SHIPPED_FILE}")) from exc


_current: Marketplaces | None = None


def install(marketplaces: Marketplaces) -> None:
    """Make `marketplaces` what `current()` answers (a service's start-up)."""
    global _current
    _current = marketplaces


def current() -> Marketplaces:
    """The installed marketplaces; the shipped ones until a service installs its own."""
    return _current if _current is not None else shipped()
