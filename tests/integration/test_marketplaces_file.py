"""A service given a bad marketplaces file does not start: the process exits non-zero, naming the key.

Runs the real entry point (`python -m services.returns`, as scripts/run-services and the image do)
and waits for it to end; it fails while building the app, before it listens or connects anywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.service_process import ROOT, STARTUP_S
from tests.ports import free_port

# A complete file that stands alone (no `extends`) and lacks the default marketplace, US.
JAPAN_ONLY = """\
marketplaces:
  JP:
    name: Japan
    currency: JPY
    calendar_country: JP
    time_zone: Asia/Tokyo
    default_locale: ja
    returns:
      window_days: 30
      minimum_window_days: 30
      response_deadline_hours: 48
      reminder_lead_hours: 12
      authorization_validity_days: 30
      refund_business_days: 2
      max_restocking_fee_percent: 50
"""

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
        JAPAN_ONLY,
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
