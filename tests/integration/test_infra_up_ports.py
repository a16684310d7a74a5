"""scripts/infra-up: ports are checked before anything starts, a RabbitMQ node that dies at boot is
reported at once with the reason from its crash dump, a checkout the rabbitmq user cannot reach
still gets a node, and the management UI is advertised only when infra-up started it.

Every test runs infra-up from a copy of scripts/ and deploy/local/ in pytest's temporary folder,
so it has its own .local/ (its own .local/env, pid files and logs) and never touches this
checkout's. Anything it starts uses spare ports; on the default ports it only finds the shared
servers and reuses them, which leaves them as they are. pytest's temporary folder is private
(mode 0700), which is exactly the "checkout the rabbitmq user cannot reach" case.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAST = 15  # seconds: a port problem must be reported well before this


def _ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def _free_port(low: int, high: int) -> int:
    """A port in [low, high] that nothing listens on or is bound to."""
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {low}-{high}")


def _high_amqp_port() -> int:
    """Above 45535: AMQP_PORT + 20000 would be beyond 65535."""
    return _free_port(45536, 60999)


def _low_port() -> int:
    """Below the ephemeral range and outside RabbitMQ's own ranges."""
    return _free_port(20000, _ephemeral_range()[0] - 1)


def _logged_at(log: str, text: str) -> int:
    """Seconds since midnight of infra-up's first `[infra HH:MM:SS] ...` line containing `text`."""
    line = next((line for line in log.splitlines() if text in line), None)
    found = re.match(r"\[infra (\d\d):(\d\d):(\d\d)\]", line or "")
    assert found, f"no line with {text!r} in:\n{log}"
    hours, minutes, secs = (int(part) for part in found.groups())
    return hours * 3600 + minutes * 60 + secs


class Checkout:
    """A copy of the scripts infra-up needs, with its own .local/."""

    def __init__(self, folder: Path) -> None:
        self.root = folder / "checkout"
        (self.root / "deploy").mkdir(parents=True)
        shutil.copytree(ROOT / "scripts", self.root / "scripts")
        shutil.copytree(
            ROOT / "deploy" / "local",
            self.root / "deploy" / "local",
            ignore=shutil.ignore_patterns("target", "__pycache__"),
        )
        # The checkout's jar, with its time (copy2): newer than the copied sources, so infra-up uses it
        # instead of building its own with Maven (scripts/test's infra-up built it before any test).
        jar = Path("deploy/local/mongo-wire/target/mongo-wire.jar")
        if (ROOT / jar).is_file():
            (self.root / jar.parent).mkdir(parents=True)
            shutil.copy2(ROOT / jar, self.root / jar)
        (self.root / ".venv").symlink_to(ROOT / ".venv")
        self.nodes: list[str] = []

    def run(self, *args: str, timeout: float = 60, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
        """scripts/infra-up ARGS with ENV; (result, seconds). A run over TIMEOUT is killed and fails."""
        variables = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AMQP_", "RABBITMQ_", "MONGO_", "SMTP_", "MAIL_", "STRIPE_"))
        }
        variables.update(env)
        if "AMQP_PORT" in env:
            self.nodes.append(f"returns-{env['AMQP_PORT']}@localhost")
        began = time.monotonic()
        process = subprocess.Popen(
            [str(self.root / "scripts" / "infra-up"), *args],
            env=variables,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            pytest.fail(f"infra-up {' '.join(args)} was still running after {timeout} s\n{stderr[-3000:]}")
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), time.monotonic() - began

    def down(self) -> None:
        subprocess.run([str(self.root / "scripts" / "infra-down")], capture_output=True, timeout=120)
        for node in self.nodes:  # a node's folder when .local was out of the rabbitmq user's reach
            shutil.rmtree(Path("/var/lib/rabbitmq") / node, ignore_errors=True)


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Checkout]:
    copy = Checkout(tmp_path)
    yield copy
    copy.down()


def _fails_fast(result: subprocess.CompletedProcess[str], seconds: float, *expected: str) -> None:
    assert result.returncode != 0, result.stdout + result.stderr
    assert seconds < FAST, f"took {seconds:.1f} s\n{result.stderr}"
    for text in expected:
        assert text in result.stderr, result.stderr


@pytest.mark.parametrize("value", ["70000", "0", "abc", "5672x", " "])
def test_an_invalid_amqp_port_is_refused_before_anything_starts(checkout: Checkout, value: str):
    result, seconds = checkout.run(AMQP_PORT=value)
    _fails_fast(result, seconds, "AMQP_PORT=", "1 to 65535")
    assert not (checkout.root / ".local" / "env").exists()


@pytest.mark.parametrize(
    "name", ["MONGO_PORT", "SMTP_PORT", "MAIL_HTTP_PORT", "STRIPE_HTTP_PORT", "STRIPE_HTTPS_PORT", "RABBITMQ_MGMT_PORT"]
)
def test_every_port_variable_is_validated(checkout: Checkout, name: str):
    result, seconds = checkout.run(**{name: "65536"})
    _fails_fast(result, seconds, f"{name}=65536", "1 to 65535")


def test_two_servers_on_one_port_are_refused(checkout: Checkout):
    result, seconds = checkout.run(MONGO_PORT="5672")
    _fails_fast(result, seconds, "AMQP_PORT and MONGO_PORT are both 5672")


def test_a_dist_port_above_65535_is_refused(checkout: Checkout):
    result, seconds = checkout.run(AMQP_PORT=str(_high_amqp_port()), RABBITMQ_DIST_PORT="70000")
    _fails_fast(result, seconds, "RABBITMQ_DIST_PORT=70000", "1 to 65535")


def test_a_dist_port_in_the_cli_range_is_refused(checkout: Checkout):
    result, seconds = checkout.run(AMQP_PORT=str(_high_amqp_port()), RABBITMQ_DIST_PORT="35675")
    _fails_fast(result, seconds, "RABBITMQ_DIST_PORT=35675", "35672-35682")


def test_a_dist_port_in_use_is_refused(checkout: Checkout):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result, seconds = checkout.run(AMQP_PORT=str(_high_amqp_port()), RABBITMQ_DIST_PORT=str(port))
    _fails_fast(result, seconds, f"RABBITMQ_DIST_PORT={port}", "in use")


def test_a_high_amqp_port_gets_a_valid_dist_port(checkout: Checkout):
    amqp = _high_amqp_port()
    result, seconds = checkout.run("--check", AMQP_PORT=str(amqp), timeout=30)
    assert result.returncode == 0, result.stderr
    assert seconds < FAST
    ports = dict(re.findall(r"^(\w+)=(\d+)$", result.stdout, re.M))
    dist = int(ports["RABBITMQ_DIST_PORT"])
    low, high = _ephemeral_range()
    assert 1 <= dist <= 65535 and not 35672 <= dist <= 35682 and not low <= dist <= high, dist
    assert dist != amqp + 20000
    assert not (checkout.root / ".local" / "env").exists(), "--check starts nothing"


def test_a_node_that_dies_at_boot_is_reported_at_once_with_the_reason(checkout: Checkout):
    """A port bound by another process without listening (as an outgoing connection's local port
    is) passes the up-front check; the node then dies at boot with nothing in its log."""
    with socket.socket() as holder:
        dist = _low_port()
        holder.bind(("127.0.0.1", dist))
        result, _ = checkout.run(
            AMQP_PORT=str(_high_amqp_port()), RABBITMQ_DIST_PORT=str(dist), RABBITMQ_MANAGEMENT="0", timeout=60
        )
    assert result.returncode != 0, result.stdout + result.stderr
    assert "died at boot" in result.stderr and "dist_port_already_used" in result.stderr, result.stderr
    # Timed by infra-up's own log: the run as a whole also waits for the other servers it starts,
    # which on a loaded machine (a parallel test run) can take longer than this.
    waited = (_logged_at(result.stderr, "died at boot") - _logged_at(result.stderr, "RabbitMQ: starting node")) % 86400
    assert 0 <= waited < 30, f"reported {waited} s after the node started (timeout 60)\n{result.stderr}"


def test_a_private_checkout_gets_a_node_and_only_its_own_management_port_is_advertised(
    checkout: Checkout, tmp_path: Path
):
    """pytest's tmp_path is under a 0700 folder: the rabbitmq user cannot reach the copy's .local.
    The management port is held by someone else, so the plugin is skipped and must not be
    advertised, neither on the first run nor when the node is reused."""
    assert (tmp_path.parent.parent.stat().st_mode & 0o077) == 0, "expected pytest's private base folder"
    amqp = _high_amqp_port()
    node = f"returns-{amqp}@localhost"
    with socket.socket() as other_ui:
        other_ui.bind(("127.0.0.1", 0))
        other_ui.listen()
        mgmt = other_ui.getsockname()[1]
        runs = []
        for attempt in ("start", "reuse"):
            result, _ = checkout.run(AMQP_PORT=str(amqp), RABBITMQ_MGMT_PORT=str(mgmt), timeout=120)
            assert result.returncode == 0, f"{attempt}: {result.stderr[-3000:]}"
            assert f"amqp://guest:guest@127.0.0.1:{amqp}/" in result.stdout
            assert "management UI" not in result.stdout and str(mgmt) not in result.stdout, result.stdout
            env = (checkout.root / ".local" / "env").read_text()
            assert "export RABBITMQ_MGMT_URL=''" in env, env
            runs.append(result)
    assert "rabbitmq user cannot reach" in runs[0].stderr, runs[0].stderr
    assert (Path("/var/lib/rabbitmq") / node / "mnesia").is_dir()
    # The node may open as many files as the machine allows, not the 1,024 `su rabbitmq` leaves it:
    # each quorum queue takes three handles, and at RabbitMQ's limit the node stops answering.
    pid = (checkout.root / ".local" / "run" / f"rabbitmq.{amqp}.pid").read_text().strip()
    soft, hard = _open_files_limit(int(pid))
    assert soft == hard, f"the node's open files: soft limit {soft}, hard limit {hard}"


def _open_files_limit(pid: int) -> tuple[str, str]:
    """(soft, hard) "Max open files" of a process, as /proc/PID/limits gives them."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError(f"no open-files line in /proc/{pid}/limits")
