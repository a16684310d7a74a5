"""The run-wide half of the query-shape check (tests/integration/shapes.py), serial or parallel.

The integration conftest gives every service's MongoDB client a listener into `QUERY_SHAPES` and fails
a test that sent an unlisted filter. What only the whole run can tell is decided here, in hooks that
tests/conftest.py loads in every pytest process: an xdist controller never loads
tests/integration/conftest.py (it collects nothing), and each worker sees only part of the run.
- an unlisted filter sent after the last test (an app shutting down) fails the run;
- a service whose whole tests/integration/<service>/ folder ran while its client reported nothing
  fails the run: the check would have passed for nothing;
- the summary lists the shapes no service sent (coverage, not a failure).

Under xdist each worker sends its recorder to the controller (`export`/`merge`); the controller gets
every test report as it happens, so it knows which services' tests passed.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.query_shapes import SERVICES as QUERY_SERVICES
from shared.query_shapes import SHAPES
from tests.integration.shapes import ShapeRecorder, complaint

QUERY_SHAPES = ShapeRecorder()
RAN: set[str] = set()  # services with an integration test that passed in this run (in any process)


def _service_of(nodeid: str) -> str | None:
    path = nodeid.split("::")[0].split("/")
    if path[:2] == ["tests", "integration"] and len(path) > 3 and path[2] in QUERY_SERVICES:
        return path[2]
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    service = _service_of(report.nodeid)
    if service is not None and report.when == "call" and report.passed:
        RAN.add(service)


def whole_folders(config: pytest.Config) -> set[str]:
    """Services whose tests/integration/<service>/ folder is selected whole: an argument names it or a
    folder above it (a file or a single test may legitimately leave its MongoDB client unused)."""
    root, whole = config.rootpath, set()
    for arg in config.args:
        if "::" in arg:
            continue
        selected = (config.invocation_params.dir / arg).resolve()
        for service in QUERY_SERVICES:
            folder = root / "tests" / "integration" / service
            if folder == selected or selected in folder.parents:
                whole.add(service)
    return whole


def unwatched() -> list[str]:
    """Services whose integration tests passed but whose MongoDB client reported nothing: their
    client is made some way `service_connecting` does not know, so the check passed for nothing."""
    return sorted(RAN - QUERY_SHAPES.services)


def _worker_output(config: pytest.Config) -> dict[str, Any] | None:
    """An xdist worker's channel to the controller; None in the controller or a plain run."""
    output: dict[str, Any] | None = getattr(config, "workeroutput", None)
    return output


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """In the controller: a worker's services, shapes seen and late unlisted filters join its own
    (the test reports, hence RAN, already reach the controller as they happen)."""
    QUERY_SHAPES.merge(getattr(node, "workeroutput", {}).get("query_shapes"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Which listed shapes the services never sent in this run (coverage, not a failure)."""
    whole = whole_folders(terminalreporter.config)
    for service in unwatched():
        fails = " (fails the run: its whole folder ran)" if service in whole else ""
        terminalreporter.write_line(f"query shapes: {service}'s MongoDB client reported nothing{fails}")
    if QUERY_SHAPES.seen:
        unseen = [shape for shape in SHAPES if shape not in QUERY_SHAPES.seen]
        terminalreporter.write_line(f"query shapes: {len(SHAPES) - len(unseen)} of {len(SHAPES)} listed were sent")
        for shape in unseen:
            terminalreporter.write_line(f"  not sent: {', '.join(shape.collections)} {shape.filter_text} {shape.sort}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    output = _worker_output(session.config)
    if output is not None:  # a worker: what it saw goes to the controller, which decides
        output["query_shapes"] = QUERY_SHAPES.export()
        return
    found = QUERY_SHAPES.take_unlisted()  # sent after the last test, by an app shutting down
    if found:
        print("\n" + complaint(found))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    blind = [service for service in unwatched() if service in whole_folders(session.config)]
    if blind:  # its whole folder ran and not one filter was seen: the shape check is not watching it
        print(
            f"\nquery shapes: the MongoDB clients of {', '.join(blind)} reported nothing although all of "
            "their integration tests ran: tests/integration/conftest.py `service_connecting` does not "
            "recognise how they connect, so their filters went unchecked"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
