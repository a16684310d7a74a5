"""What the order defect rate's facts cost per event against the real store: one command for the first
copy, a newer version and an exact copy of a claim, chargeback or feedback; an older version (out
of order) two, and it changes nothing."""

from __future__ import annotations

import pytest

from services.metrics.dispute_facts import chargeback_fact, claim_fact, expired_fact, feedback_fact
from services.metrics.store import Kept, MetricsStore
from tests.integration.commands import counted_database
from tests.unit.metrics.builders import at
from tests.unit.metrics.dispute_builders import (
    chargeback,
    chargeback_closed,
    claim,
    expired_order,
    granted,
    removed,
    seller_feedback,
)

pytestmark = pytest.mark.integration


async def test_one_command_per_event_and_the_newest_version_kept(mongodb_url):
    async with counted_database(mongodb_url) as (db, commands):
        facts = MetricsStore(db).disputes
        filed = claim("c1", order_id="o1", seller_id="s1", filed_at=at(1))
        left = seller_feedback("f1", order_id="o1", seller_id="s1", rating=1, left_at=at(1))
        opened = chargeback("cb1", order_id="o1", seller_id="s1", opened_at=at(1))
        steps = [
            (facts.record_claim, claim_fact(filed), Kept.FIRST),
            (facts.record_claim, claim_fact(filed), Kept.STALE),  # a copy: an equal version, a no-op match
            (facts.record_claim, claim_fact(granted(filed, at(2))), Kept.NEWER),
            (facts.record_feedback, feedback_fact(left), Kept.FIRST),
            (facts.record_feedback, feedback_fact(removed(left, at(3))), Kept.NEWER),
            (facts.record_chargeback, chargeback_fact(opened), Kept.FIRST),
            (facts.record_chargeback, chargeback_fact(chargeback_closed(opened, at(4), won=True)), Kept.NEWER),
            (facts.record_expired, expired_fact(expired_order("x1", seller_id="s1", expired_at=at(2))), Kept.FIRST),
        ]
        for record, fact, expected in steps:
            commands.names.clear()
            assert await record(fact) is expected
            assert commands.names == ["update"], (fact, commands.names)

        # Out of order: the older version is refused (its insert collides, the plain update misses).
        commands.names.clear()
        assert await facts.record_feedback(feedback_fact(left)) is Kept.STALE
        assert commands.names == ["update", "update"]
        stored = await db["feedback_facts"].find_one({"_id": "f1"})
        assert stored is not None and (stored["removed"], stored["version"]) == (True, 2)
        claim_doc = await db["claim_facts"].find_one({"_id": "c1"})
        assert claim_doc is not None and (claim_doc["status"], claim_doc["granted_at"]) == ("paying", at(2))
