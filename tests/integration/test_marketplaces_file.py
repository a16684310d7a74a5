"""A service given a bad marketplaces file does not start: the process exits non-zero, naming the key.

Runs the real entry point (`python -m services.returns`, as scripts/run-services and the image do)
and waits for it to end; it fails while building the app, before it listens or connects anywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.service_process import ROOT, STARTUP_S, free_port

BAD_FILES = {
    "window below the statutory minimum": (
        "extends: shipped\nmarketplaces:\n  DE:\n    returns:\n      window_days: 10\n",
        "marketplaces.DE.returns: Value error, window_days (10) is below minimum_window_days",
    ),
    "misspelt key": (
        "extends: shipped\nmarketplaces:\n  CN:\n    returns:\n      quality_window: 15\n",
        "marketplaces.CN.returns.quality_window: Extra inputs are not permitted",
    ),
    "the default marketplace missing": (
        "marketplaces:\n  JP:\n    name: Japan\n    currency: JPY\n    calendar_country: JP\n"
        "    time_zone: Asia/Tokyo\n    default_locale: ja\n    returns:\n      window_days: 30\n"
        "      minimum_window_days: 30\n      response_deadline_hours: 48\n      reminder_lead_hours: 12\n"
        "      authorization_validity_days: 30\n      refund_business_days: 2\n      max_restocking_fee_percent: 50\n",
        "default_marketplace: 'US' is not in the marketplaces file",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_service_with_a_bad_marketplaces_file_exits_naming_the_key(tmp_path, case):
    text, key = BAD_FILES[case]
    path = tmp_path / "marketplaces.yaml"
    path.write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")} | {
        "MARKETPLACES_FILE": str(path),
        "PORT": str(free_port()),
        "JWT_SECRET": "s" * 64,
        "DEFAULT_MARKETPLACE": "US",
    }
    finished = subprocess.run(  # waits for the process to end (it must, on its own)
        [sys.executable, "-m", "services.returns"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=STARTUP_S,
        check=False,
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode != 0, output
    assert "MarketplaceConfigError" in output, output
    assert key in output, output
