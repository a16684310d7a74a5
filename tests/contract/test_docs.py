"""The guides exist and cover what subscribers, API callers and operators look for."""

from __future__ import annotations

import re

import pytest

from shared.events import EVENT_TYPES, EXCHANGE, ORDERS_EXCHANGE
from tests.contract.support import ROOT

DOCS = ROOT / "docs"


def text(name: str) -> str:
    return (DOCS / name).read_text()


def test_architecture_has_the_pictures():
    blocks = re.findall(r"```mermaid\n(.*?)```", text("architecture.md"), flags=re.S)
    kinds = {block.split()[0] for block in blocks}
    assert {"flowchart", "stateDiagram-v2"} <= kinds


def test_architecture_names_files_that_exist():
    """The files "adding an event type" sends a reader to are really there."""
    named = set(re.findall(r"`((?:shared|services|tools|tests)/[\w/]+\.py)`", text("architecture.md")))
    assert "shared/events.py" in named and "services/metrics/handlers.py" in named
    assert not [path for path in named if not (ROOT / path).is_file()]


def test_subscriber_guide_lists_every_event_type():
    guide = text("subscribers.md")
    missing = [event_type for event_type in EVENT_TYPES if f"`{event_type}`" not in guide]
    assert not missing, f"docs/subscribers.md does not mention {missing}"
    for needle in (EXCHANGE, ORDERS_EXCHANGE, "sequence", "at least once", "Binding a queue"):
        assert needle.lower() in guide.lower(), needle


@pytest.mark.parametrize(
    ("guide", "needles"),
    [
        ("api.md", ["Authorization: Bearer", "application/problem+json", "Idempotency-Key", "next_cursor", "If-Match"]),
        ("operations.md", ["shared.deadletters replay", "/v1/metrics/rebuild", "Rotating the JWT key"]),
    ],
)
def test_guides_cover_their_topics(guide, needles):
    body = text(guide)
    assert all(needle in body for needle in needles), [n for n in needles if n not in body]


def test_relative_links_resolve():
    for guide in ("architecture.md", "subscribers.md", "api.md", "operations.md", "configuration.md"):
        for target in re.findall(r"\]\(([^)#:]+)\)", text(guide)):
            assert (DOCS / target).exists(), f"{guide}: broken link {target}"
