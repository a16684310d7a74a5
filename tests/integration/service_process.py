"""A service as its own OS process, for crash tests: started on a free port, killed with -9, restarted.

`ServiceProcesses(module, env).start()` runs `python -m <module>` (the entry point scripts/run-services
uses) with `env`; `stop_all()` ends whatever still runs (SIGTERM, then SIGKILL). `kill9` is the crash.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 60  # a process start is mostly imports: seconds on a quiet machine, up to ~20 s on a loaded one


async def ready(port: str) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{port}/readyz", timeout=1)).status_code == 200
    except httpx.HTTPError:
        return False


def kill9(process: subprocess.Popen) -> None:
    """SIGKILL: no shutdown code runs, whatever the process was doing stays half done."""
    process.send_signal(signal.SIGKILL)
    process.wait(5)


class ServiceProcesses:
    def __init__(self, module: str, env: Mapping[str, str]) -> None:
        self.module, self.env = module, dict(env)
        self.processes: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
