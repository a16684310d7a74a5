"""What an email's outcome costs: its notification.* is committed claimed for the outbox relay."""

from __future__ import annotations

from collections import Counter

import pytest

from shared.outbox_writes import LEASE, OWNER, PENDING
from tests.integration.notifications.test_notifications_delivery import event

pytestmark = pytest.mark.integration


@pytest.fixture
async def service(service_commands, service):  # the folder's service, its commands counted
    return service


async def drained(service) -> bool:
    docs = await service.notifications()
    return bool(docs) and all(d["outbox"] == [] and not {PENDING, LEASE, OWNER} & d.keys() for d in docs)


async def test_each_sent_email_costs_its_outcome_write_and_the_relays_release(
    service_commands, service, mailbox, announcements, wait_until
):
    created = event("return.created", 1)  # two emails: the buyer's and the seller's
    service_commands.clear()
    await service.publish(created)
    await wait_until(lambda: len(announcements.of("notification.sent")) == 2, message="two notification.sent")
    await wait_until(lambda: drained(service), message="the outboxes emptied")

    assert len(mailbox.received()) == 2
    # One insert of both emails (already claimed for sending); per email, the outcome with its
    # event in one write that also claims the document for the relay, then the relay's release.
    # Writes that wait for one in flight go together (the outcomes in one bulk update, the releases
    # too): at most these.
    writes = Counter(service_commands.writes("notifications"))
    assert writes["insert"] == 1 and writes["findAndModify"] <= 2, writes
    assert writes["findAndModify"] + writes["update"] <= 4 and set(writes) <= {"insert", "findAndModify", "update"}
