"""A payer whose lease ran out and was taken by another can no longer write: its lease end is its
fencing token (a later claim can only set a later end). It cannot renew, record an outcome, or give
the order's room back while the other payer is still paying."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.refunds import domain
from services.refunds.domain import return_refund_id
from tests.unit.refunds.builders import make_return

pytestmark = pytest.mark.integration


async def test_a_payer_that_lost_its_lease_cannot_renew_or_record_and_the_new_payer_can(service, wait_until):
    order = await service.delivered(lines=[("L1", 1, 2500)], shipping=0)
    ret = make_return(order, ("L1", 1, "DEFECTIVE"), refund_mode="manual")
    event = await service.send("return.received", ret)
    await wait_until(lambda: service.handled(event.id), message="return.received not handled")
    store, refund_id = service.app.state.store, return_refund_id(ret.return_id)
    due = (await store.get(refund_id)).refund
    pending = domain.take_over(due, datetime.now(UTC))
    assert await store.save(due.version, pending)

    now = datetime(2030, 1, 1, tzinfo=UTC)  # lease times are the payer's own clock: any will do here
    first = await store.claim(refund_id, now, now + timedelta(seconds=30))
    later = now + timedelta(seconds=31)  # the first payer stalled past its lease
    second = await store.claim(refund_id, later, later + timedelta(seconds=30))
    assert first is not None and second is not None and first.lease_until < second.lease_until

    stale = first.refund.model_copy(update={"attempts": 1})
    assert not await store.extend_lease(stale, first.lease_until, later + timedelta(seconds=60))
    failed = domain.fail(first.refund, later, gateway="stripe", reason="timeout")
    assert await store.commit(first.refund.version, failed, lease=first.lease_until) is None
    issued = domain.issue(second.refund, later, gateway="stripe", reference="re_1")
    assert await store.commit(second.refund.version, issued, lease=second.lease_until) is not None
    assert (await service.refund_doc(refund_id))["status"] == "issued"
