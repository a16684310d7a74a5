"""Killing the notifications service mid-send, for real: its process, and an SMTP server that does it.

`ServiceProcess` runs `python -m services.notifications` as its own OS process (the same entry point
as scripts/run-services) on a free port, with the database, exchange and queue prefix it is given.

`CrashSink` is an aiosmtpd server that records every message it accepts (with the time it accepted
it) and can
  - be slow: `latency_s` before each answer to DATA, like a real relay;
  - hold: DATA waits until `release()` (a slow server; the sender's claim must survive it);
    `hold_quit()`: QUIT waits, after the email was accepted, until `release_quit()`;
  - kill the sender: `kill_senders(n, pids)` SIGKILLs the process on the other end of the next `n`
    accepted messages after recording them and before answering 250. The server has the email and
    will deliver it; the sender never records that: the crash window of issue 11, item 6. The
    process is found from the connection itself (/proc/net/tcp: the socket's inode, then the
    candidate processes' file descriptors), so it works with several replicas running.

Used by test_notifications_crash.py and measure_crash.py (the under-load measurement).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from tests.ports import free_port

REPO = Path(__file__).resolve().parents[3]


# ---- which process is on the other end of a local TCP connection --------------------------------


def _socket_inode(local_port: int, remote_port: int) -> int | None:
    """Inode of the IPv4 socket 127.0.0.1:local_port -> :remote_port (the client's side)."""
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == remote_port:
                return inode or None
    return None


def pid_of_peer(peer: tuple[str, int], server_port: int, candidates: Iterable[int]) -> int | None:
    inode = _socket_inode(peer[1], server_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in candidates:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None


def _dead(pid: int) -> bool:
    """Gone or a zombie: it will never run another instruction."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


# ---- the SMTP server ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() when the server accepted it
    message: EmailMessage
    raw: bytes

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def notification_id(self) -> str:
        return str(self.message["X-Notification-Id"])


@dataclass(frozen=True)
class Kill:
    at: float
    pid: int
    message_id: str
    awaiting_answer: int = 0  # other messages the server had whole and had not answered yet


class CrashSink:
    """aiosmtpd handler and its controller. The handler runs on the controller's thread."""

    def __init__(self, *, latency_s: float = 0.0) -> None:
        self.port = free_port()
        self.latency_s = latency_s
        self.messages: list[Received] = []
        self.kills: list[Kill] = []
        self.data_started = 0  # DATA commands begun (held or not)
        self.trace: list[str] = []  # what happened, for failure messages
        self._released = threading.Event()
        self._released.set()
        self.quits_started = 0
        self._quit_released = threading.Event()
        self._quit_released.set()
        self._kill_budget = 0
        self._kill_pids: set[int] = set()
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    # -- control (any thread) --

    def start(self) -> CrashSink:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._quit_released.set()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def hold_quit(self) -> None:
        """QUIT waits (after the email was accepted) until `release_quit()`."""
        self._quit_released.clear()

    def release_quit(self) -> None:
        self._quit_released.set()

    def kill_senders(self, count: int, pids: Iterable[int]) -> None:
        with self._lock:
            self._kill_budget, self._kill_pids = count, set(pids)

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def killed(self) -> list[Kill]:
        with self._lock:
            return list(self.kills)

    # -- aiosmtpd hooks --

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name

        with self._lock:
            self.quits_started += 1
        while not self._quit_released.is_set():
            await asyncio.sleep(0.01)
        return "221 Bye"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        # Like a real MTA: once the server has the whole message it keeps it, even if the client
        # is gone before the answer (RFC 1047); aiosmtpd would cancel this handler on the drop.
        try:
            return await asyncio.shield(self._data(session, envelope))
        except BaseException as exc:  # CancelledError: the client dropped the connection
            self.trace.append(f"{session.peer}: {type(exc).__name__}: {exc}")
            raise

    async def _data(self, session: Any, envelope: Any) -> str:
        with self._lock:
            self.data_started += 1
        self.trace.append(f"{session.peer}: DATA")
        while not self._released.is_set():
            await asyncio.sleep(0.01)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with self._lock:
            self.messages.append(Received(time.monotonic(), message, raw))
            kill = self._kill_budget > 0
            if kill:
                self._kill_budget -= 1
        self.trace.append(f"{session.peer}: accepted, kill={kill}")
        if kill:
            pid = pid_of_peer(session.peer, self.port, self._kill_pids)
            if pid is None:
                self.trace.append(f"{session.peer}: no candidate process holds this connection")
            else:
                os.kill(pid, signal.SIGKILL)
                with self._lock:
                    awaiting = self.data_started - len(self.messages)
                    self.kills.append(Kill(time.monotonic(), pid, str(message["Message-ID"]), awaiting))
                self.trace.append(f"{session.peer}: killed {pid}")
                while not _dead(pid):  # (the connection drops meanwhile: this handler is cancelled)
                    await asyncio.sleep(0.001)
        return "250 2.0.0 Ok: queued"


# ---- the service process ------------------------------------------------------------------------


class ServiceProcess:
    """`python -m services.notifications` on its own port; stdout+stderr go to `log`."""

    def __init__(self, env: dict[str, str], log: Path, code_dir: Path = REPO) -> None:
        self.port, self.code_dir = free_port(), code_dir
        self.env = {**env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> ServiceProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.notifications"],
                cwd=self.code_dir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if not self.alive():
                    raise RuntimeError(f"notifications exited before it was ready:\n{self.tail()}")
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"notifications not ready after {timeout}s:\n{self.tail()}")
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
        self.reap()

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL after 15 s."""
        if self.alive():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.reap()

    def reap(self) -> None:
        if self.process is not None:
            self.process.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def service_env(
    *, mongodb_url: str, database: str, amqp_url: str, exchange: str, queue_prefix: str, smtp_port: int, **extra: str
) -> dict[str, str]:
    """The environment of a notifications process that meets no one else's stack."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "MONGODB_DB", "SMTP_", "DISPATCH_", "SEND_"))
    }
    env.update(
        {
            "MONGODB_URL": mongodb_url,
            "MONGODB_DB": database,
            "AMQP_URL": amqp_url,
            "EXCHANGE": exchange,
            "QUEUE_PREFIX": queue_prefix,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "SMTP_TLS": "none",
            "SMTP_TIMEOUT_S": "60",
            "DISPATCH_POLL_MS": "50",
            "OUTBOX_POLL_MS": "100",
            "OUTBOX_CLAIM_MS": "1000",  # the killed process's claims soon run out
            "RETRY_DELAYS_MS": "[100, 500]",
            "SEND_RETRY_DELAYS_MS": "[200, 500, 1000]",
            "JWT_SECRET": "crash-test-secret-of-32-bytes-or-more!!",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "PYTHONFAULTHANDLER": "1",
        }
    )
    env.update(extra)
    return env
