"""The end-to-end harness: an isolated stack of real service processes and what the outside sees.

`Stack` starts the five services with `scripts/run-services` (exactly how `scripts/up` starts
them) on free ports, with their own databases, exchanges, queues, JWT secret and clock file, so
it never meets a developer's running stack or another test run on the same servers. Around them
it runs the outside world (tests/e2e/observers.py: an SMTP server, an independent AMQP
subscriber, a recording proxy in front of stripe-mock) and plays the upstream order system
(`Stack.publish_order`: `order.delivered` on the orders exchange).

Marketplaces: every process reads the same marketplaces file, MARKETPLACES_FILE when set (passed
through, made absolute; a scenario may also give one in `extra_env`), else the shipped profiles.

Time: `Stack.move_clock_to()` writes an offset into the CLOCK_FILE every service reads
(shared.clock.FileOffsetClock), moving "now" of all processes at once. It only ever moves forward.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import httpx
from motor.motor_asyncio import AsyncIOMotorClient

from shared.tokens import mint
from tests.e2e.observers import Email, EventTap, Mailbox, Seen, StripeRecorder
from tests.ports import free_port
from tests.queues import service_queues

__all__ = ["Email", "EventTap", "Mailbox", "Seen", "Stack", "StripeRecorder", "WaitTimeout", "eventually", "holds"]

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("returns", "refunds", "notifications", "metrics", "disputes")
WAIT_TIMEOUT = float(os.environ.get("E2E_WAIT_TIMEOUT", "15"))


class WaitTimeout(AssertionError):
    pass


async def eventually(
    condition: Callable[[], Any], *, timeout: float = WAIT_TIMEOUT, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll a sync or async condition until it returns something truthy (returned); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
        except AssertionError as exc:  # a condition may assert; keep the last reason for the report
            last_error = exc
        if time.monotonic() > deadline:
            detail = f": {last_error}" if last_error else ""
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        await asyncio.sleep(interval)


async def holds(
    condition: Callable[[], Any], *, duration: float, interval: float = 0.1, what: str = "condition"
) -> None:
    """Assert that a condition stays true for `duration` seconds (a deadline job must NOT act yet)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        assert result, f"{what} stopped holding"
        await asyncio.sleep(interval)


# ---- the stack ------------------------------------------------------------------------------


@dataclass
class Replica:
    suffix: str
    ports: dict[str, int]
    pids: dict[str, int] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"


class Stack:
    """One isolated platform: five service processes (more with `add_replicas`) and their world."""

    def __init__(
        self,
        *,
        run_id: str | None = None,
        amqp_url: str | None = None,
        mongodb_url: str | None = None,
        stripe_upstream: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.run_id = run_id or f"{datetime.now(UTC):%H%M%S}-{uuid.uuid4().hex[:6]}"
        self.name = f"e2e-{self.run_id}"
        self.amqp_url = amqp_url or os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
        self.mongodb_url = mongodb_url or os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017")
        self.stripe_upstream = stripe_upstream or os.environ.get("STRIPE_API_BASE", "http://127.0.0.1:12111")
        self.dir = REPO / ".local" / "e2e" / self.run_id
        self.clock_file = self.dir / "clock"
        self.exchange = f"{self.name}.returns.events"
        self.orders_exchange = f"{self.name}.orders.events"
        self.queue_prefix = f"{self.name}."
        self.db_prefix = f"e2e_{self.run_id.replace('-', '_')}_"
        self.jwt_secret = uuid.uuid4().hex + uuid.uuid4().hex
        # The disputes service verifies Stripe's webhooks with it; a scenario signs its own with it.
        self.stripe_webhook_secret = f"whsec_{uuid.uuid4().hex}"
        self.extra_env = extra_env or {}
        self.replicas: list[Replica] = []
        self.offset = timedelta()
        self.mailbox = Mailbox()
        self.stripe = StripeRecorder(self.stripe_upstream)
        self.tap = EventTap(self.amqp_url, self.exchange)
        self._amqp: aio_pika.abc.AbstractRobustConnection | None = None
        self._orders_exchange: aio_pika.abc.AbstractExchange | None = None
        self._http: dict[str, httpx.AsyncClient] = {}

    # -- configuration --

    def env(self) -> dict[str, str]:
        """What every service process gets: isolated names, short operational delays, the world's ports."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "MONGODB_DB"))}
        env.update(
            {
                "MONGODB_URL": self.mongodb_url,
                "AMQP_URL": self.amqp_url,
                "MONGODB_DB_PREFIX": self.db_prefix,
                "EXCHANGE": self.exchange,
                "ORDERS_EXCHANGE": self.orders_exchange,
                "QUEUE_PREFIX": self.queue_prefix,
                "JWT_ALGORITHM": "HS256",
                "JWT_SECRET": self.jwt_secret,
                "CLOCK_FILE": str(self.clock_file),
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(self.mailbox.port),
                "SMTP_TLS": "none",
                "STRIPE_API_BASE": self.stripe.url,
                "STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret,
                "LOG_LEVEL": "INFO",
                # Operational delays, short so a scenario takes seconds; the business rules (48 h,
                # 2 business days, 30 days) keep their real values and are reached by moving the clock.
                "RETRY_DELAYS_MS": "[200, 1000, 3000]",
                "OUTBOX_POLL_MS": "200",
                "JOB_INTERVAL": "0.5",
                "JOB_INTERVAL_S": "0.5",
                "GATEWAY_RETRY_DELAYS_MS": "[200, 500]",
                "GATEWAY_TIMEOUT_S": "5",
                "SEND_RETRY_DELAYS_MS": "[300, 1000, 3000]",
                "DISPATCH_POLL_MS": "200",
                "SERVICES_LOG_DIR": str(self.dir),
                "SERVICES_RUN_DIR": str(self.dir),
                "SERVICES_REUSE": "0",
                "READY_TIMEOUT": "90",
                # A marketplace bonus on refunds taken as store credit, so a scenario sees it added
                # (and rounded half-up); only returns with `refund_to: store_credit` are affected.
                "STORE_CREDIT_BONUS_PERCENT": "5",
            }
        )
        env.update(self.extra_env)
        if env.get("MARKETPLACES_FILE"):
            # The services run in the repository root: a path relative to where the tests run must still hold.
            env["MARKETPLACES_FILE"] = str(Path(env["MARKETPLACES_FILE"]).resolve())
        return env

    # -- life cycle --

    async def start(self) -> Stack:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.clock_file.write_text("0")
        self.mailbox.start()
        self.stripe.start()
        try:
            self._amqp = await aio_pika.connect_robust(
                self.amqp_url, timeout=10, client_properties={"connection_name": "e2e-orders"}
            )
        except Exception as exc:
            raise RuntimeError(f"no RabbitMQ at {self.amqp_url} (run scripts/infra-up): {exc}") from exc
        channel = await self._amqp.channel(publisher_confirms=True, on_return_raises=True)
        self._orders_exchange = await channel.declare_exchange(
            self.orders_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        await self.tap.start()  # before any service can publish
        await self.add_replicas()
        return self

    async def add_replicas(self) -> Replica:
        """Start one more instance of each service (same databases, queues and exchanges)."""
        replica = Replica(
            suffix="" if not self.replicas else f".{len(self.replicas) + 1}",
            ports={service: free_port() for service in SERVICES},
        )
        env = self.env() | {f"{service.upper()}_PORT": str(port) for service, port in replica.ports.items()}
        env["SERVICES_SUFFIX"] = replica.suffix
        self.replicas.append(replica)
        process = await asyncio.create_subprocess_exec(
            str(REPO / "scripts" / "run-services"),
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        for service in SERVICES:
            pid_file = self.dir / f"{service}{replica.suffix}.pid"
            if pid_file.exists():
                replica.pids[service] = int(pid_file.read_text())
        if process.returncode != 0:
            raise RuntimeError(f"scripts/run-services failed:\n{output.decode()}\n{self.log_tails()}")
        return replica

    async def stop_replica(self, replica: Replica) -> None:
        await asyncio.gather(*(asyncio.to_thread(_terminate, pid) for pid in replica.pids.values()))
        replica.pids.clear()

    async def stop(self, *, cleanup: bool = True) -> None:
        for replica in reversed(self.replicas):
            await self.stop_replica(replica)
        for client in self._http.values():
            await client.aclose()
        await self.tap.stop()
        self.mailbox.stop()
        self.stripe.stop()
        if self._amqp is not None:
            if cleanup:
                await self._delete_broker_objects()
            await self._amqp.close()
        if cleanup:
            await self._drop_databases()
            _prune_old_runs(self.dir.parent, keep=5)

    async def _delete_broker_objects(self) -> None:
        assert self._amqp is not None
        delays = json.loads(self.env()["RETRY_DELAYS_MS"])
        names = [name for service in SERVICES for name in service_queues(f"{self.queue_prefix}{service}", delays)]
        for name in names:
            async with self._amqp.channel() as channel:  # a failed delete closes the channel
                try:
                    await channel.queue_delete(name)
                except Exception:  # noqa: BLE001, S110 - best-effort cleanup: absent already is fine
                    pass
        for name in (self.exchange, self.orders_exchange):
            async with self._amqp.channel() as channel:
                try:
                    await channel.exchange_delete(name)
                except Exception:  # noqa: BLE001, S110 - best-effort cleanup: absent already is fine
                    pass

    async def _drop_databases(self) -> None:
        client = AsyncIOMotorClient(self.mongodb_url, serverSelectionTimeoutMS=5000)
        try:
            for service in SERVICES:
                await client.drop_database(f"{self.db_prefix}{service}")
        except Exception as exc:  # noqa: BLE001 - best effort, but say so
            print(f"e2e: could not drop the databases {self.db_prefix}*: {exc}", file=sys.stderr)
        finally:
            client.close()

    def log_tails(self, lines: int = 25) -> str:
        out = []
        for path in sorted(self.dir.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"---- {path.name} (last {len(tail)} lines) ----\n" + "\n".join(tail))
        return "\n".join(out)

    def logs_text(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.dir.glob("*.log")))

    # -- time --

    def now(self) -> datetime:
        """The services' "now": system time plus the clock file's offset."""
        return datetime.now(UTC) + self.offset

    def move_clock_to(self, at: datetime) -> None:
        offset = at - datetime.now(UTC)
        if offset < self.offset:
            raise ValueError("the e2e clock only moves forward")
        self.offset = offset
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(f"{offset.total_seconds():.3f}")
        os.replace(tmp, self.clock_file)  # a new file, a new mtime: every process re-reads it

    def advance_clock(self, delta: timedelta) -> None:
        self.move_clock_to(self.now() + delta)

    # -- talking to it --

    def token(self, role: str, sub: str, aud: str, ttl: int = 3600) -> str:
        return mint(self.jwt_secret, role, sub, aud, ttl)

    def url(self, service: str, replica: int = 0) -> str:
        return self.replicas[replica].url(service)

    def http(self, service: str, replica: int = 0) -> httpx.AsyncClient:
        key = f"{service}:{replica}"
        if key not in self._http:
            self._http[key] = httpx.AsyncClient(base_url=self.url(service, replica), timeout=20)
        return self._http[key]

    async def publish_order(self, order: dict[str, Any]) -> str:
        """The upstream order system: `order.delivered` (CloudEvents JSON) on the orders exchange."""
        assert self._orders_exchange is not None
        event_id = str(uuid.uuid4())
        body = {
            "specversion": "1.0",
            "id": event_id,
            "source": "/e2e/orders",
            "type": "order.delivered",
            "time": self.now().isoformat(),
            "subject": order["order_id"],
            "datacontenttype": "application/json",
            "sequence": 1,
            "data": order,
        }
        await self._orders_exchange.publish(
            aio_pika.Message(
                json.dumps(body).encode(),
                message_id=event_id,
                type="order.delivered",
                content_type="application/cloudevents+json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key="order.delivered",
            mandatory=True,
        )
        return event_id


def _terminate(pid: int, grace: float = 15.0) -> None:
    """TERM the process group `scripts/run-services` started (uv and its python), KILL if it lingers."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _prune_old_runs(parent: Path, keep: int) -> None:
    runs = sorted((p for p in parent.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
