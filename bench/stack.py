"""The bench's own isolated stack: its MongoDB-wire server, the observer, the five services, and
(with `own_broker`) its own RabbitMQ node (bench/broker.py).

The disputes service runs too, as deployed, although a return's lifecycle asks nothing of it: it
keeps its order read-model from order.delivered, return.* and refund.issued, so its queues, logs
and cost are the platform's. bench/targets.py keeps issue 13's figures over the other four.

Isolation: own ports, database names, exchanges, queue prefix and JWT secret. RabbitMQ is shared by
default (a second node costs ~7 s and tells the throughput bench nothing); the fault runs
(bench/chaos/) start their own node, so stopping or killing a broker, a store or an SMTP server
never touches the servers on the default ports that everyone else uses. Everything started here is
stopped here, by process group id (or node name).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import psutil

from bench.broker import OwnBroker
from bench.ports import listener_pid, port_open
from shared.queues import QueueNames

REPO = Path(__file__).resolve().parent.parent
SERVICES = ("returns", "refunds", "notifications", "metrics", "disputes")
MONGO_JAR = REPO / "deploy/local/mongo-wire/target/mongo-wire.jar"
# The JVM options of the bench's own MongoDB-wire server (--mongo-jvm): those scripts/infra-up uses.
MONGO_JVM = (REPO / "deploy/local/mongo-wire/jvm.options").read_text().strip()


@dataclass
class StackConfig:
    run_id: str
    out: Path
    port_base: int = 28000
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    mongodb_url: str | None = None  # None: start our own mongo-wire server
    mongo_backend: str = "journal"
    payment: str = "ledger"
    stripe_api_base: str = "http://127.0.0.1:12111"
    log_level: str = "INFO"
    count_mongo_ops: bool = True
    mongo_jar: Path = MONGO_JAR
    mongo_jvm: list[str] = field(default_factory=lambda: MONGO_JVM.split())
    mongo_java: str = "java"
    services_tree: Path | None = None  # run the services' code from this copy of the repo (A/B of a change)
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    extra_env: dict[str, str] = field(default_factory=dict)
    own_broker: bool = False  # start a RabbitMQ node of our own on amqp_port (amqp_url is then ignored)
    durable_witness: bool = False  # the observer's queue survives a broker restart (quorum, acked)

    def __post_init__(self) -> None:
        if self.own_broker:
            self.amqp_url = f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    def port(self, service: str) -> int:
        return self.port_base + 1 + SERVICES.index(service)

    @property
    def smtp_port(self) -> int:
        return self.port_base + 25

    @property
    def mongo_port(self) -> int:
        return self.port_base + 17

    @property
    def amqp_port(self) -> int:
        """The own RabbitMQ node's AMQP port; its Erlang distribution port is the next one."""
        return self.port_base + 72

    @property
    def ports(self) -> list[int]:
        """Every port this stack listens on (for picking a free --port-base)."""
        own = [self.mongo_port] if self.mongodb_url is None else []
        broker = [self.amqp_port, self.amqp_port + 1] if self.own_broker else []
        return [*(self.port(s) for s in SERVICES), self.smtp_port, *own, *broker]

    @property
    def exchange(self) -> str:
        return f"bench.{self.run_id}.returns.events"

    @property
    def orders_exchange(self) -> str:
        return f"bench.{self.run_id}.orders.events"

    @property
    def queue_prefix(self) -> str:
        return f"bench.{self.run_id}."

    @property
    def db_prefix(self) -> str:
        return f"bench_{self.run_id}_"

    def database(self, service: str) -> str:
        return f"{self.db_prefix}{service}"

    @property
    def retry_delays_ms(self) -> tuple[int, ...]:
        import json

        raw = self.extra_env.get("RETRY_DELAYS_MS")
        return tuple(json.loads(raw)) if raw else (1000, 5000, 30000)  # shared.settings' default

    def queues(self, service: str) -> QueueNames:
        """The service's queues, named as shared.bus names them: <prefix><service>.inbox/.retry.<n>/.dead."""
        return QueueNames(f"{self.queue_prefix}{service}", self.retry_delays_ms)

    @property
    def witness_queue(self) -> str:
        return f"{self.queue_prefix}observer"

    def base_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service)}"


def pick_port_base(preferred: int, *, own_broker: bool) -> int:
    """The first base from `preferred` on (steps of 100) whose every port is free: several benches
    may run at once on a shared machine."""
    for base in range(preferred, 60000, 100):
        probe = StackConfig(run_id="probe", out=Path("/nonexistent"), port_base=base, own_broker=own_broker)
        if not any(port_open(p) for p in probe.ports):
            return base
    raise RuntimeError("no free block of ports for the bench's stack")


def _stop_groups(
    pids: list[int], timeout: float = 30.0, children: dict[int, subprocess.Popen[bytes]] | None = None
) -> None:
    """TERM the process groups we started (setsid: pgid == pid), together; KILL what lingers.
    Our own children are reaped as they exit (a zombie would still count as a live group)."""
    children = children or {}
    alive = []
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
            os.killpg(pid, signal.SIGCONT)  # a group frozen by a fault run must get to handle its TERM
            alive.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        for pid in alive:
            if pid in children:
                children[pid].poll()
        alive = [pid for pid in alive if _group_exists(pid)]
    for pid in alive:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.logs = config.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.groups: dict[str, int] = {}  # name -> pid of the group leader we started
        self.children: dict[int, subprocess.Popen[bytes]] = {}  # those we spawned ourselves, to reap
        self.processes: dict[str, psutil.Process] = {}  # name -> the process doing the work
        self.mongodb_url = config.mongodb_url or f"mongodb://127.0.0.1:{config.mongo_port}"
        self._mongo_dir: Path | None = None
        self._mongo_argv: list[str] | None = None
        self.broker = OwnBroker(config.amqp_port, config.out / "rabbitmq") if config.own_broker else None

    # ---- pieces ---------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env=env or os.environ.copy(),
            start_new_session=True,
        )
        self.groups[name] = proc.pid
        self.children[proc.pid] = proc
        return proc

    def _wait(self, name: str, ready, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            pid = self.groups.get(name)
            if pid is not None and not psutil.pid_exists(pid):
                raise RuntimeError(f"{name} exited before it was ready; see {self.logs / (name + '.log')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready after {timeout:.0f}s; see {self.logs / (name + '.log')}")
            time.sleep(0.2)

    def start_mongo(self) -> None:
        if self.config.mongodb_url is not None:
            pid = listener_pid(urlsplit(self.config.mongodb_url).port or 27017)
            if pid:
                self.processes["mongo (shared)"] = psutil.Process(pid)
            return
        jar = self.config.mongo_jar
        if not jar.exists():
            raise RuntimeError(f"{jar} is missing: run scripts/infra-up once (it builds it), or pass --mongodb-url")
        if port_open(self.config.mongo_port):
            raise RuntimeError(f"port {self.config.mongo_port} is taken; choose another --port-base")
        self._mongo_dir = self.config.out / "mongo"
        self._mongo_dir.mkdir(exist_ok=True)
        argv = [
            self.config.mongo_java,
            *self.config.mongo_jvm,
            # Its pauses, to tell a GC stall from a snapshot's or the disk's (logs/mongo-gc.log).
            f"-Xlog:gc:file={self.logs / 'mongo-gc.log'}:time,uptime",
            "-jar",
            str(jar),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.config.mongo_port),
            "--backend",
            self.config.mongo_backend,
        ]
        if self.config.mongo_backend == "h2":
            argv += ["--file", str(self._mongo_dir / "bench.mv")]
        elif self.config.mongo_backend == "journal":
            argv += ["--dir", str(self._mongo_dir / "bench.journal")]
        self._mongo_argv = argv
        self._run_mongo()

    def _run_mongo(self) -> None:
        proc = self._spawn("mongo", self._mongo_argv)
        self._wait("mongo", lambda: port_open(self.config.mongo_port))
        self.processes["mongo"] = psutil.Process(proc.pid)

    def kill_mongo(self) -> None:
        """kill -9 our own MongoDB-wire server (never a shared one)."""
        if self._mongo_argv is None:
            raise RuntimeError("the MongoDB-wire server is not the bench's own: it is not killed")
        self._kill_group("mongo")

    def restart_mongo(self) -> None:
        """Start our server again on the same file (after kill_mongo)."""
        assert self._mongo_argv is not None
        deadline = time.monotonic() + 30
        while port_open(self.config.mongo_port) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._run_mongo()

    def _kill_group(self, name: str) -> None:
        pid = self.groups.pop(name)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if pid in self.children:
            self.children.pop(pid).wait()
        deadline = time.monotonic() + 10
        while _group_exists(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def start_observer(self) -> Path:
        out = self.config.out / "observer"
        argv = [
            sys.executable,
            "-m",
            "bench.observer",
            "--dir",
            str(out),
            "--smtp-port",
            str(self.config.smtp_port),
            "--amqp-url",
            self.config.amqp_url,
            "--exchange",
            self.config.exchange,
            "--queue",
            self.config.witness_queue,
        ] + (["--durable"] if self.config.durable_witness else [])
        if port_open(self.config.smtp_port):
            raise RuntimeError(f"port {self.config.smtp_port} is taken; choose another --port-base")
        proc = self._spawn("observer", argv)
        self._wait("observer", lambda: (out / "ready").exists(), timeout=30)
        self.processes["observer"] = psutil.Process(proc.pid)
        return out

    def service_env(self) -> dict[str, str]:
        c = self.config
        env = os.environ.copy()
        for name in ("PORT", "MONGODB_DB", "CLOCK_FILE"):
            env.pop(name, None)
        env.update(
            {
                "MONGODB_URL": self.mongodb_url,
                "AMQP_URL": c.amqp_url,
                "EXCHANGE": c.exchange,
                "ORDERS_EXCHANGE": c.orders_exchange,
                "QUEUE_PREFIX": c.queue_prefix,
                "JWT_SECRET": c.jwt_secret,
                "JWT_ALGORITHM": "HS256",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(c.smtp_port),
                "STRIPE_API_BASE": c.stripe_api_base,
                "LOG_LEVEL": c.log_level,
                # scripts/run-services
                "MONGODB_DB_PREFIX": c.db_prefix,
                "SERVICES_LOG_DIR": str(self.logs),
                "SERVICES_RUN_DIR": str(c.out / "run"),
                "SERVICES_REUSE": "0",
                "READY_TIMEOUT": "120",
                **{f"{s.upper()}_PORT": str(c.port(s)) for s in SERVICES},
            }
        )
        if c.count_mongo_ops:  # bench/inject/sitecustomize.py: a pymongo command listener, no code change
            self.mongo_ops_dir.mkdir(parents=True, exist_ok=True)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "bench/inject"), env.get("PYTHONPATH")]))
            # Absolute: with --services-tree the services run in the other tree, so a relative
            # --out would send the tallies nowhere (the injector drops what it cannot write).
            env["BENCH_MONGO_OPS_DIR"] = str(self.mongo_ops_dir.resolve())
        env.update(c.extra_env)
        return env

    @property
    def mongo_ops_dir(self) -> Path:
        return self.config.out / "mongo-ops"

    def mongo_ops(self) -> dict[str, dict[str, Any]]:
        """The services' MongoDB command tallies so far: service -> {counts, micros}."""
        import json

        found: dict[str, dict[str, Any]] = {}
        for service in SERVICES:
            proc = self.processes.get(service)
            path = self.mongo_ops_dir / f"mongo-ops-{proc.pid}.json" if proc else None
            if path is not None and path.exists():
                try:
                    found[service] = json.loads(path.read_text())
                except ValueError:
                    pass
        return found

    def start_services(self) -> None:
        """Through scripts/run-services (the README's way), so the bench runs what users run."""
        for service in SERVICES:
            if port_open(self.config.port(service)):
                raise RuntimeError(f"port {self.config.port(service)} is taken; choose another --port-base")
        env = self.service_env()
        script = REPO / "scripts/run-services"
        run_dir = self.config.out / "run"
        tree = self.config.services_tree
        if tree is not None:
            for service in SERVICES:
                self._start_from_tree(service, tree, env)
            for service in SERVICES:
                self._wait(service, lambda s=service: _ready(self.config.port(s)), timeout=120)
        elif script.exists():
            result = subprocess.run([str(script)], cwd=REPO, env=env, capture_output=True, text=True)
            for service in SERVICES:  # record the groups first, so a failure still tears down what started
                pidfile = run_dir / f"{service}.pid"
                if pidfile.exists():
                    self.groups[service] = int(pidfile.read_text().strip())
            if result.returncode != 0:
                raise RuntimeError(f"scripts/run-services failed:\n{result.stdout}\n{result.stderr}")
        else:  # the same command, without the script
            for service in SERVICES:
                self._spawn(
                    service,
                    ["uv", "run", "--frozen", "python", "-m", f"services.{service}"],
                    env | {"PORT": str(self.config.port(service)), "MONGODB_DB": self.config.database(service)},
                )
            for service in SERVICES:
                self._wait(service, lambda s=service: _ready(self.config.port(s)), timeout=120)
        for service in SERVICES:
            self.processes[service] = _python_of(self.groups[service], service)

    def _start_from_tree(self, service: str, tree: Path, env: dict[str, str]) -> None:
        """`python -m services.<service>` in another tree (config.services_tree), in a group of its own."""
        # `python -m` puts the working directory first on sys.path: the copy's code wins over
        # the editable install of this checkout, with this checkout's virtualenv.
        proc = subprocess.Popen(
            ["nice", "-n", str(niceness(service)), str(REPO / ".venv/bin/python"), "-m", f"services.{service}"],
            cwd=tree,
            start_new_session=True,
            stdout=(self.logs / f"{service}.log").open("ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env | {"PORT": str(self.config.port(service)), "MONGODB_DB": self.config.database(service)},
        )
        self.groups[service] = proc.pid
        self.children[proc.pid] = proc

    def unsettled(self, names: set[str]) -> dict[str, int] | None:
        """Messages not yet acknowledged (ready + in consumers' hands) per queue of NAMES, or None
        when the broker cannot say: the bench's own node via rabbitmqctl, a shared one via its
        management API when RABBITMQ_MGMT_URL names it."""
        if self.broker is not None:
            return self.broker.unsettled(names)
        api = os.environ.get("RABBITMQ_MGMT_URL", "").rstrip("/")
        if not api:
            return None
        parts = urlsplit(api)
        vhost = quote(urlsplit(self.config.amqp_url).path.lstrip("/") or "/", safe="")
        base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
        auth = (parts.username or "guest", parts.password or "guest")
        counts = {}
        for name in names:
            response = httpx.get(f"{base}/api/queues/{vhost}/{quote(name, safe='')}", auth=auth, timeout=10)
            response.raise_for_status()
            counts[name] = int(response.json().get("messages", 0))
        return counts

    def find_broker(self) -> None:
        if self.broker is not None:
            self.broker.start()
            self.processes["rabbitmq"] = psutil.Process(self.broker.pid())
            return
        pid = listener_pid(urlsplit(self.config.amqp_url).port or 5672)
        if pid:
            self.processes["rabbitmq (shared)"] = psutil.Process(pid)

    # ---- faults on the services (bench/chaos/) ------------------------------------------------

    def kill_service(self, service: str) -> None:
        """kill -9 the service's process group (uv and its python)."""
        self._kill_group(service)
        self.processes.pop(service, None)

    def restart_service(self, service: str) -> None:
        """Start one service again, the way start_services did (scripts/run-services, SERVICES=<name>)."""
        env = self.service_env() | {"SERVICES": service}
        run_dir = self.config.out / "run"
        if self.config.services_tree is not None:
            self._start_from_tree(service, self.config.services_tree, env)
            self._wait(service, lambda: _ready(self.config.port(service)), timeout=120)
        else:
            result = subprocess.run(
                [str(REPO / "scripts/run-services")], cwd=REPO, env=env, capture_output=True, text=True
            )
            pidfile = run_dir / f"{service}.pid"
            if pidfile.exists():
                self.groups[service] = int(pidfile.read_text().strip())
            if result.returncode != 0:
                raise RuntimeError(
                    f"scripts/run-services (restart {service}) failed:\n{result.stdout}\n{result.stderr}"
                )
        self.processes[service] = _python_of(self.groups[service], service)

    def signal_service(self, service: str, sig: int) -> None:
        os.killpg(self.groups[service], sig)

    def group_alive(self, pgid: int) -> bool:
        """Whether a process group we started still runs (our own children are reaped first: a
        zombie leader would keep the group "existing")."""
        child = self.children.get(pgid)
        if child is not None and child.poll() is not None:
            self.children.pop(pgid, None)
        return _group_exists(pgid)

    def service_ready(self, service: str) -> bool:
        return _ready(self.config.port(service))

    # ---- teardown -------------------------------------------------------------------------

    def stop(self, *, keep_data: bool = False) -> None:
        # Services first (they drain into the broker and the database), then what they talk to.
        for names in (SERVICES, ("observer", "mongo")):
            _stop_groups(
                [pid for name in names if (pid := self.groups.pop(name, None)) is not None], children=self.children
            )
        if self._mongo_dir is not None and not keep_data:
            shutil.rmtree(self._mongo_dir, ignore_errors=True)

    def stop_broker(self, *, keep_data: bool = False) -> None:
        """After the cleanup of queues and exchanges: our own node goes (the shared one stays)."""
        if self.broker is not None:
            self.broker.shutdown(keep_data=keep_data)


def _ready(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status == 200
    except Exception:  # noqa: BLE001 - not yet
        return False


def _python_of(pid: int, service: str) -> psutil.Process:
    """`uv run` spawns the interpreter as a child: find the process that actually serves."""
    leader = psutil.Process(pid)
    for proc in [leader, *leader.children(recursive=True)]:
        try:
            if f"services.{service}" in " ".join(proc.cmdline()) and "python" in proc.name():
                return proc
        except psutil.NoSuchProcess:
            continue
    return leader


def describe(processes: dict[str, psutil.Process]) -> dict[str, Any]:
    return {name: {"pid": p.pid, "cmd": " ".join(p.cmdline())[:160], "nice": p.nice()} for name, p in processes.items()}


# scripts/run-services' default CPU priorities (its SERVICES_NICE); tests/unit/bench checks they agree.
DEFAULT_NICE = "notifications=10 metrics=10 disputes=10"


def niceness(service: str) -> int:
    """The niceness scripts/run-services gives `service` (SERVICES_NICE, else its default)."""
    for entry in os.environ.get("SERVICES_NICE", DEFAULT_NICE).split():
        name, _, value = entry.partition("=")
        if name == service:
            return int(value)
    return 0
