"""The bench's own RabbitMQ node (`--own-broker`, and every fault run), which a fault may stop or kill."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil

from bench.ports import port_open

# The RabbitMQ CLI tools use distribution ports 35672-35682 (scripts/infra-up's note).
_CLI_DIST_PORTS = range(35672, 35683)


class OwnBroker:
    """A RabbitMQ node of the bench's own, started the way scripts/infra-up starts one (the Debian
    package's rabbitmq-server, run as user rabbitmq, no plugins), on `port` with the Erlang
    distribution on `port + 1`, data and log under `base` — so a fault run may stop and kill it.
    """

    def __init__(self, port: int, base: Path) -> None:
        self.port, self.dist_port, self.base = port, port + 1, base.resolve()  # the node runs elsewhere
        self.node = f"bench-{port}@localhost"
        for p in (self.port, self.dist_port):
            if not 1024 < p <= 65535 or p in _CLI_DIST_PORTS:
                raise ValueError(
                    f"port {p} cannot serve the bench's broker (1025-65535, not 35672-35682): "
                    "choose another --port-base"
                )
        self.log = self.base / "log" / "rabbit.log"
        self.started = False  # a node was launched (and must be stopped at the end)
        self._prepared = False

    def env(self) -> dict[str, str]:
        return os.environ | {
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_LOGS": str(self.log),
            "RABBITMQ_PID_FILE": str(self.base / "node.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self, timeout: float = 120.0) -> None:
        if shutil.which("rabbitmq-server") is None:
            raise RuntimeError("rabbitmq-server is not installed: run scripts/infra-up once")
        for p in (self.port, self.dist_port):
            if port_open(p):
                raise RuntimeError(f"port {p} is taken; choose another --port-base")
        if not self._prepared:
            for sub in ("mnesia", "log"):
                (self.base / sub).mkdir(parents=True, exist_ok=True)
            (self.base / "enabled_plugins").write_text("[].\n")
            # As scripts/infra-up does: `su rabbitmq` leaves the node 1,024 open files, and at RabbitMQ's
            # share of them (three per quorum queue, one per connection) it stops answering.
            (self.base / "rabbitmq-env.conf").write_text('ulimit -n "$(ulimit -Hn)" 2>/dev/null || true\n')
            # The node runs as user rabbitmq (the package's wrapper su's to it): its folders must be its own.
            subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.base)], check=True)
            self._prepared = True
        self._run(["rabbitmq-server", "-detached"], timeout=60)
        self.started = True
        deadline = time.monotonic() + timeout
        # -detached answers at once; await_startup fails until the node has registered with epmd.
        while not (self._ctl("await_startup", "--timeout", "10") and port_open(self.port)):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the bench's RabbitMQ node {self.node} did not start in {timeout:.0f} s; log: {self.log}"
                )
            time.sleep(0.3)

    def pid(self) -> int:
        return int((self.base / "node.pid").read_text().strip())

    def unsettled(self, names: set[str]) -> dict[str, int]:
        """Messages ready plus delivered but not yet acknowledged, per queue of NAMES (rabbitmqctl:
        the node has no management plugin). A passive declare counts only the ready ones, so a
        backlog held in the consumers' prefetch windows would look like an empty queue."""
        done = subprocess.run(
            ["rabbitmqctl", "-q", "-n", self.node, "list_queues", "--no-table-headers", "name", "messages"],
            env=self.env(),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=True,
        )
        counts = {}
        for line in done.stdout.splitlines():
            name, _, messages = line.rpartition("\t")
            if name in names:
                counts[name] = int(messages)
        if missing := names - counts.keys():  # never read an unlisted queue as empty
            raise RuntimeError(f"rabbitmqctl list_queues on {self.node} did not list {sorted(missing)}")
        return counts

    def kill(self) -> None:
        """kill -9 the node's Erlang VM and wait until its port is free."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        self._wait_gone(pid)

    def stop(self) -> None:
        """A clean stop (rabbitmqctl stop): the node shuts down its queues and exits."""
        pid = self.pid()
        if not self._ctl("stop", timeout=120):
            os.kill(pid, signal.SIGKILL)
        self._wait_gone(pid)

    def shutdown(self, *, keep_data: bool = False) -> None:
        if not self.started:
            return
        try:
            self.stop()
        except (OSError, ValueError):  # no pid file: it never came up; stop it by name
            self._ctl("stop", timeout=60)
        self.started = False
        if not keep_data:
            shutil.rmtree(self.base / "mnesia", ignore_errors=True)

    def _wait_gone(self, pid: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while (psutil.pid_exists(pid) or port_open(self.port)) and time.monotonic() < deadline:
            time.sleep(0.1)

    def _ctl(self, *args: str, timeout: float = 30) -> bool:
        return self._run(["rabbitmqctl", "-q", "-n", self.node, *args], timeout=timeout, check=False)

    def _run(self, argv: list[str], *, timeout: float, check: bool = True) -> bool:
        with self.log.parent.joinpath("bench-cli.log").open("ab") as out:
            try:
                code = subprocess.run(
                    argv,
                    env=self.env(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=timeout,
                ).returncode
            except subprocess.TimeoutExpired:
                code = -1
        if check and code != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({code}); see {self.log.parent / 'bench-cli.log'}")
        return code == 0
