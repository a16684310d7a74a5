"""End-to-end fixtures: one isolated stack of real service processes for all of tests/e2e.

Needs the infrastructure (scripts/infra-up: RabbitMQ, a MongoDB-wire server, stripe-mock) at
AMQP_URL / MONGODB_URL / STRIPE_API_BASE (defaults: the local ports). The SMTP server is the
harness's own. Scenarios stay independent by using their own buyers, sellers and orders.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.e2e.harness import Stack
from tests.e2e.world import World

_stacks: list[Stack] = []


# Package scope: started once for tests/e2e and stopped when its last test is done, so the processes
# don't idle on through the rest of a full test run.
@pytest.fixture(scope="package")
async def stack() -> AsyncIterator[Stack]:
    platform = Stack()
    _stacks.append(platform)
    try:
        await platform.start()
    except BaseException:
        await platform.stop(cleanup=True)
        raise
    yield platform
    # The logs stay under .local/e2e/<run>/; E2E_KEEP=1 also keeps the databases, queues and exchanges.
    await platform.stop(cleanup=os.environ.get("E2E_KEEP") != "1")
    _stacks.remove(platform)


@pytest.fixture
def world(stack: Stack, request: pytest.FixtureRequest) -> World:
    return World(stack, request.node.name.removeprefix("test_")[:18].replace("_", "-"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if report.failed and _stacks:
        for platform in _stacks:
            report.sections.append((f"service logs ({platform.dir})", platform.log_tails()))
