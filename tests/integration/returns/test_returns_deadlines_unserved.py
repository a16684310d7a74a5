"""The deadline job cannot stall on returns of a marketplace no longer served: its due queries only
ask for served marketplaces, so a full batch of such returns does not hide a served one behind it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.returns.jobs import DeadlineJob
from services.returns.rulebook import RuleBook
from shared import marketplaces
from tests.integration.returns.factories import unique

pytestmark = pytest.mark.integration

SETTINGS = {"response_deadline": timedelta(seconds=60), "reminder_lead": timedelta(seconds=20)}
BATCH = 3


async def test_a_batch_of_unserved_due_returns_does_not_stall_a_served_one(api, clock, returns_app):
    unserved = []
    for _ in range(BATCH):  # due first: created before the served one
        _, ret = await api.order_with_return(
            ("L1", 1, "DEFECTIVE"), buyer_id=unique("b"), marketplace="DE", currency="EUR"
        )
        unserved.append(ret["return_id"])
    clock.advance(timedelta(seconds=1))
    _, served = await api.order_with_return(("L1", 1, "DEFECTIVE"), buyer_id=unique("b"))
    lifecycle, before = returns_app.state.lifecycle, marketplaces.current()
    book = lifecycle.book
    without_de = marketplaces.Marketplaces({code: p for code, p in before.items() if code != "DE"})
    try:  # DE removed from the file since those returns were requested
        marketplaces.install(without_de)
        lifecycle.book = RuleBook(without_de, book.default_marketplace)
        job = DeadlineJob(lifecycle, interval=timedelta(seconds=1), batch_size=BATCH)
        clock.advance(timedelta(seconds=120))  # every one of them past its response deadline
        run = await job.run_once()
    finally:
        marketplaces.install(before)
        lifecycle.book = book
    assert run.authorized == 1
    assert (await api.get_return(served["return_id"]))["status"] == "authorized"
    assert {(await api.get_return(r))["status"] for r in unserved} == {"requested"}
