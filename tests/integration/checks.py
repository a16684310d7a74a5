"""Checks the in-process service tests share: a problem+json answer, a periodic job's runs on every replica."""

from __future__ import annotations

from typing import Any

from tests.integration.returns.factories import eventually


def problem(response: Any, status: int, field: str | None = None) -> dict:
    """The problem+json body of `response`, which must have `status` and, if given, name `field`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"]
    if field is not None:
        assert field in [e["field"] for e in body.get("errors", [])], body
    return body


async def settle(job: str, *apps: Any) -> None:
    """Wait until every replica's job (`app.state.<job>`) has completed two whole runs since now."""
    jobs = [getattr(app.state, job) for app in apps]
    marks = [each.runs for each in jobs]
    await eventually(
        lambda: all(each.runs >= mark + 2 for each, mark in zip(jobs, marks, strict=True)),
        what="two deadline runs per replica",
    )
