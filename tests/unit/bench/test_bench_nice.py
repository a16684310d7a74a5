"""The bench gives services the CPU priority scripts/run-services gives them (its SERVICES_NICE)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.stack import DEFAULT_NICE, niceness

RUN_SERVICES = Path(__file__).resolve().parents[3] / "scripts/run-services"


def test_the_default_is_run_services_default() -> None:
    found = re.search(r"\$\{SERVICES_NICE-([^}]*)\}", RUN_SERVICES.read_text())
    assert found is not None, "scripts/run-services no longer reads SERVICES_NICE with a default"
    assert found.group(1) == DEFAULT_NICE


def test_background_consumers_yield_and_the_request_path_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERVICES_NICE", raising=False)
    assert {s: niceness(s) for s in ("returns", "refunds", "notifications", "metrics", "disputes")} == {
        "returns": 0,
        "refunds": 0,
        "notifications": 10,
        "metrics": 10,
        "disputes": 10,
    }


def test_an_empty_setting_runs_every_service_at_the_same_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICES_NICE", "")
    assert niceness("metrics") == 0
    monkeypatch.setenv("SERVICES_NICE", "returns=-1 metrics=5")
    assert (niceness("returns"), niceness("metrics"), niceness("disputes")) == (-1, 5, 0)
