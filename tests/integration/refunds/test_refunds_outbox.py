"""What a refund's events cost the refunds service: the commit hands them to its outbox relay."""

from __future__ import annotations

import pytest

from services.refunds.domain import return_refund_id
from shared.outbox_writes import LEASE, OWNER, PENDING
from tests.unit.refunds.builders import make_return

pytestmark = pytest.mark.integration


@pytest.fixture
async def service(service_commands, service):  # the folder's service, its commands counted
    return service


async def drained(service, refund_id: str) -> bool:
    doc = await service.refund_doc(refund_id)
    return doc is not None and doc["outbox"] == [] and not {PENDING, LEASE, OWNER} & doc.keys()


async def test_an_issued_refund_is_committed_claimed_and_released_in_one_write(
    service_commands, service, published, wait_until
):
    order = await service.delivered(lines=[("L1", 2, 1500)], shipping=599)
    ret = make_return(order, ("L1", 1, "NO_LONGER_NEEDED"), received=[("L1", 1, "sellable")])
    service_commands.clear()
    await service.send("return.received", ret)
    refund_id = return_refund_id(ret.return_id)

    await wait_until(lambda: published.of_type("return.refunded", ret.return_id), message="no return.refunded")
    await wait_until(lambda: drained(service, refund_id), message="the outbox emptied")
    assert [e.type for e in published.events] == ["refund.issued", "return.refunded"]
    # Inserted claimed for paying; the outcome and its events in one write that also claims the
    # document for the relay (no lease by _id); the relay's release.
    assert service_commands.writes("refunds") == ["insert", "findAndModify", "update"]
