"""The claim deadline job with short durations and two replicas running it at once: each reminder
and each automatic grant happens exactly once, on the business clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.disputes.app import create_app
from tests.integration.checks import settle
from tests.integration.spans import spans, trace_id_of

pytestmark = pytest.mark.integration
__all__ = ["spans"]  # the fixture
pytest_plugins = ["tests.integration.claims_harness"]  # its fixtures: the service, its API, a tap, the clock

SETTINGS = {
    "jobs_enabled": True,
    "job_interval_s": 0.03,
    "claim_response_hours": 60 / 3600,  # the seller has 60 s
    "claim_reminder_hours": 20 / 3600,  # reminded 20 s before
}


@pytest.fixture(scope="module")
async def replica(disputes_app, disputes_settings, disputes_clock) -> AsyncIterator:
    """A second instance of the service on the same database and queues, with its own job."""
    app = create_app(disputes_settings, disputes_clock)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as _:
        yield app


async def test_remind_and_grant_exactly_once_with_two_runners(
    claims_api, disputes_tap, disputes_clock, disputes_app, replica
):
    api, clock = claims_api, disputes_clock
    unanswered = [await api.file(await api.deliver(), 1000 + n) for n in range(6)]
    contested_early_order = await api.deliver()
    contested_early = await api.file(contested_early_order)
    contested_late_order = await api.deliver()
    contested_late = await api.file(contested_late_order)
    contest = {"kind": "contest", "evidence": {"tracking_number": "1Z999"}}
    seller = api.as_seller(contested_early_order.seller.id)
    api.ok(await api.act(contested_early["claim_id"], "respond", seller, **contest), 200)

    clock.advance(timedelta(seconds=30))  # nothing due yet
    await settle("claim_deadlines", disputes_app, replica)
    assert all(disputes_tap.types(c["claim_id"]) in ([], ["claim.filed"]) for c in unanswered)
    clock.advance(timedelta(seconds=15))  # 15 s before the deadline: inside the 20 s lead
    await settle("claim_deadlines", disputes_app, replica)
    seller = api.as_seller(contested_late_order.seller.id)
    api.ok(await api.act(contested_late["claim_id"], "respond", seller, **contest), 200)
    clock.advance(timedelta(seconds=20))  # past the deadline: the platform grants unanswered claims
    await settle("claim_deadlines", disputes_app, replica)

    for claim in unanswered:
        cid = claim["claim_id"]
        events = await disputes_tap.wait_types(cid, ["claim.filed", "claim.response_due_soon", "claim.granted"])
        assert [e.sequence for e in events] == [1, 2, 3]
        granted = await api.get(cid)
        assert granted == events[-1].data and granted["status"] == "paying" and granted["reminded"]
        decision = granted["decision"]
        assert decision["automatic"] and decision["funded_by"] == "seller" and decision["outcome"] == "granted"
        assert decision["actor"] == {"role": "platform", "id": "disputes"} and decision["amount"] == claim["amount"]
        assert granted["payment"] == {
            "refund_id": f"rf_{cid}",
            "amount": claim["amount"],
            "paid": None,
            "issued_at": None,
        }
        assert [s["action"] for s in granted["timeline"]] == ["file", "remind", "grant"]
    types = ["claim.filed", "claim.seller_responded"]
    await disputes_tap.wait_types(contested_early["claim_id"], types)
    late = await disputes_tap.wait_types(
        contested_late["claim_id"], ["claim.filed", "claim.response_due_soon", "claim.seller_responded"]
    )
    assert late[-1].data["status"] == "contested"
    # Nothing more comes of further runs.
    clock.advance(timedelta(hours=1))
    await settle("claim_deadlines", disputes_app, replica)
    assert all(len(disputes_tap.of(c["claim_id"])) == 3 for c in unanswered)
    assert len(disputes_tap.of(contested_late["claim_id"])) == 3


async def test_with_recording_on_an_automatic_grant_starts_the_trace_its_event_carries(
    spans: InMemorySpanExporter, claims_api, disputes_tap, disputes_clock, disputes_app
):
    claim = await claims_api.file(await claims_api.deliver())
    cid = claim["claim_id"]
    disputes_clock.advance(timedelta(seconds=65))  # past the seller's 60 s at once: granted, not reminded
    await settle("claim_deadlines", disputes_app)

    filed, granted = await disputes_tap.wait_types(cid, ["claim.filed", "claim.granted"])
    # Each replica running the job makes the span; only one of them commits the grant.
    grants = [
        s for s in spans.get_finished_spans() if s.name == "deadline claim.granted" and s.attributes["claim_id"] == cid
    ]
    assert grants and all(s.parent is None for s in grants)  # roots: no request or event caused them
    assert trace_id_of(granted.traceparent) in {format(s.context.trace_id, "032x") for s in grants}
    assert filed.traceparent is None  # the request that filed it sent no trace context
