"""deploy/compose.yaml: the Compose schema, the reference loader when installed, and what it must run."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from shared import marketplaces
from tests.contract.support import (
    DEPLOY,
    IMAGE_ONLY_ENV,
    ROOT,
    SERVICES,
    run,
    schema_errors,
    settings_env_names,
    tool,
    vendored_schema,
)
from tools import contracts

COMPOSE = DEPLOY / "compose.yaml"
DEFINITIONS = DEPLOY / "rabbitmq" / "definitions.json"
# What an operator must export before `docker compose up` (docs/operations.md): secrets without defaults.
REQUIRED_ENV = {"JWT_SECRET": "x" * 64, "CURSOR_SECRET": "c" * 64, "STRIPE_WEBHOOK_SECRET": "whsec_" + "y" * 48}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::?(?P<op>[-?])(?P<arg>[^}]*))?\}")


def compose() -> dict[str, Any]:
    from tests.contract.support import load_yaml

    return load_yaml(COMPOSE)


def interpolate(value: str, environ: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` (enough for this file)."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if environ.get(name):
            return environ[name]
        if op == "-":
            return arg
        if op == "?":
            raise KeyError(f"{name} is required: {arg}")
        return ""

    return INTERPOLATION.sub(replace, value)


def environment(service: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: interpolate(str(value), environ or {}) for key, value in env.items()}


def test_valid_against_the_compose_specification_schema():
    errors = schema_errors(jsonschema.Draft202012Validator, vendored_schema("compose-spec.json"), compose())
    assert not errors, "\n".join(errors)


def test_schema_validation_catches_a_broken_file():
    broken = compose()
    broken["services"]["returns"]["depends_on"]["mongo"]["condition"] = "service_ready"
    broken["services"]["refunds"]["healthcheck"]["intervall"] = "5s"
    assert len(schema_errors(jsonschema.Draft202012Validator, vendored_schema("compose-spec.json"), broken)) >= 2


def test_loads_with_the_reference_compose_loader():
    """compose-go (the library `docker compose` is built on): schema, merge keys, consistency."""
    loader = tool("compose-spec")
    if loader is None:
        pytest.fail("compose-spec not installed (scripts/install-contract-tools)")
    result = run([loader, "-no-interpolation", "-format", "json", COMPOSE.name], cwd=DEPLOY)
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)
    assert set(SERVICES) <= set(model["services"])


def test_runs_the_whole_platform_with_health_gated_start():
    services = compose()["services"]
    assert {"mongo", "rabbitmq", "mailpit", *SERVICES} <= set(services)
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if rule.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], (
                    f"{name} waits for {dependency}, which has no health check"
                )
    for name in SERVICES:
        service = services[name]
        conditions = {dep: rule["condition"] for dep, rule in service["depends_on"].items()}
        assert conditions.get("mongo") == conditions.get("rabbitmq") == "service_healthy", name
        assert "/readyz" in service["healthcheck"]["test"], f"{name}: healthy should mean ready"
        assert service.get("read_only") is True and "ALL" in service.get("cap_drop", []), name
        build = service["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve().is_file()
    assert services["notifications"]["depends_on"]["mailpit"]["condition"] == "service_healthy"


def test_infrastructure_is_real_and_configured():
    services = compose()["services"]
    mongo = services["mongo"]
    assert mongo["image"].startswith("mongo:7")
    assert "--replSet" in mongo["command"] and "rs.initiate" in " ".join(mongo["healthcheck"]["test"])
    rabbit = services["rabbitmq"]
    assert re.match(r"rabbitmq:3\.\d+-management", rabbit["image"])
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in rabbit["volumes"] if volume.startswith("./")}
    assert (COMPOSE.parent / mounts["/etc/rabbitmq/definitions.json"]).resolve() == DEFINITIONS
    conf = (COMPOSE.parent / mounts["/etc/rabbitmq/rabbitmq.conf"]).read_text()
    assert "definitions.local.path = /etc/rabbitmq/definitions.json" in conf
    mailpit = services["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit")
    assert any(port.endswith(":8025") for port in mailpit["ports"]), "the mail catcher's web UI"


def test_every_service_reads_the_same_valid_marketplaces_file():
    """The one marketplaces file is mounted read-only where MARKETPLACES_FILE points, in every service,
    and the services accept it (a bad one would stop them all at start-up)."""
    services = compose()["services"]
    sources = set()
    for name in SERVICES:
        target = environment(services[name], REQUIRED_ENV)["MARKETPLACES_FILE"]
        mounts = [v.split(":") for v in services[name].get("volumes", []) if v.split(":")[1] == target]
        assert [mode for *_, mode in mounts] == ["ro"], f"{name}: {target} must be mounted read-only"
        sources.add((COMPOSE.parent / mounts[0][0]).resolve())
    assert len(sources) == 1, f"every service must read the same marketplaces file, not {sorted(sources)}"
    assert {"US", "GB", "DE", "JP", "CN"} <= set(marketplaces.load(sources.pop()))


def _password_matches(stored: str, password: str) -> bool:
    raw = base64.b64decode(stored)
    salt, digest = raw[:4], raw[4:]
    return hashlib.sha256(salt + password.encode()).digest() == digest


@pytest.mark.parametrize("name", SERVICES)
def test_service_environment_is_its_settings(name):
    service = compose()["services"][name]
    env = environment(service, REQUIRED_ENV)
    unknown = set(env) - settings_env_names(name) - IMAGE_ONLY_ENV
    assert not unknown, f"{name}: {sorted(unknown)} are not settings of services/{name}/settings.py"
    assert env["SERVICE"] == name
    with contracts.clean_environment(contracts.settings_class(name)):
        settings = contracts.settings_class(name)(**{k.lower(): v for k, v in env.items() if k not in IMAGE_ONLY_ENV})
    assert settings.service_name == name
    published = {str(port).rsplit(":", 1)[-1] for port in service["ports"]}
    assert published == {str(settings.port)}, "the published port is the one the service listens on"
    assert "replicaSet=rs0" in settings.mongodb_url
    amqp = urlsplit(settings.amqp_url)
    assert amqp.hostname == "rabbitmq" and amqp.username == name, "each service has its own RabbitMQ user"
    users = {user["name"]: user for user in json.loads(DEFINITIONS.read_text())["users"]}
    assert _password_matches(users[name]["password_hash"], amqp.password or ""), (
        f"AMQP_URL password of {name} does not match its hash in deploy/rabbitmq/definitions.json"
    )
    with pytest.raises(KeyError):
        environment(service, {})  # JWT_SECRET has no default: compose refuses to start without one
    # Nor the cursor key: it is its own secret, not one derived from JWT_SECRET.
    assert settings.cursor_secret == REQUIRED_ENV["CURSOR_SECRET"]
    with pytest.raises(KeyError, match="CURSOR_SECRET"):
        environment(service, {"JWT_SECRET": "x" * 64})
    if "STRIPE_WEBHOOK_SECRET" in env:
        # Nor the webhook secret: a known default would let anyone forge Stripe's chargeback events.
        with pytest.raises(KeyError, match="STRIPE_WEBHOOK_SECRET"):
            environment(service, {"JWT_SECRET": "x" * 64, "CURSOR_SECRET": "c" * 64})
    if name == "notifications":
        assert env["SMTP_HOST"] == "mailpit"


def test_dockerfile_and_context_paths_exist():
    for path in (ROOT / "deploy" / "docker" / "Dockerfile", ROOT / "deploy" / "docker" / "healthcheck.py"):
        assert Path(path).is_file()
