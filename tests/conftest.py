"""Hooks every pytest process needs, the xdist controller included (it loads no deeper conftest)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.shape_check import (  # noqa: F401 - pytest finds hooks by name in a conftest
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
)

E2E = "tests/e2e/"
OWN_SERVERS = frozenset({"tests/e2e/test_chaos.py"})  # end-to-end, but on servers of its own
STACK = "tests/e2e (the shared stack)"


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """A parallel run (scripts/test: `-n 2`) hands each file to one worker, as `--dist loadfile`
    does, except that the end-to-end files on the shared stack of service processes
    (tests/e2e/conftest.py `stack`) go to one worker together: it starts the stack once, where
    spread over workers each would start and stop it again between files."""
    from xdist.scheduler import LoadFileScheduling

    class FilesAndTheStack(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = str(super()._split_scope(nodeid))
            return STACK if path.startswith(E2E) and path not in OWN_SERVERS else path

    return FilesAndTheStack(config, log)
