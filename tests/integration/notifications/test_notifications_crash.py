"""A sender killed after the SMTP server accepted an email, before it recorded so (issue 11, item 6).

Real processes (`python -m services.notifications`), the real broker and MongoDB-wire server, and an
SMTP server of the test's own (crashkit.CrashSink) that SIGKILLs the sending process between
accepting a message and answering 250. SMTP cannot be exactly once; what must hold:
  - the email goes again within the short lease (DISPATCH_LEASE_S), not after a minute and more;
  - the second copy is the same email (same Message-ID, same bytes), so receivers can drop it;
  - it goes at most twice in total, even if the resend is interrupted too;
  - a sender that is alive keeps its claim (heartbeat) however slow the server: no one steals it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from services.notifications.samples import sample_data
from shared.events import CloudEvent
from tests.integration.notifications.conftest import fresh_event
from tests.integration.notifications.crashkit import CrashSink, ServiceProcess, service_env
from tests.queues import service_queues

LEASE_S = 1.5
# The lease lapses at most LEASE_S after the last renewal (before the kill); then the next scan
# (DISPATCH_POLL_MS = 50) takes it over. The margin is for a loaded machine.
RESEND_WITHIN_S = LEASE_S + 2.5
BUYER = "buyer@example.com"


def rejected() -> CloudEvent:
    data = sample_data("return.rejected").model_copy(update={"version": 5})
    return fresh_event("return.rejected", data, service="returns", subject=data.return_id)


class Cluster:
    """Notifications processes sharing one database, exchange and queue, and one SMTP server."""

    def __init__(self, env: dict[str, str], logs: Path, sink: CrashSink) -> None:
        self.env, self.logs, self.sink = env, logs, sink
        self.processes: list[ServiceProcess] = []

    async def start(self) -> ServiceProcess:
        process = ServiceProcess(self.env, self.logs / f"notifications-{len(self.processes) + 1}.log").start()
        self.processes.append(process)
        await process.ready()
        return process

    def logs_tail(self) -> str:
        return "\n".join(f"--- pid {p.pid}\n{p.tail()}" for p in self.processes)


@pytest.fixture
async def cluster(
    mongodb_url: str, amqp_url: str, db: Any, exchange: str, queue_prefix: str, amqp: Any, tmp_path: Path
) -> AsyncIterator[Cluster]:
    sink = CrashSink().start()
    env = service_env(
        mongodb_url=mongodb_url,
        database=db.name,
        amqp_url=amqp_url,
        exchange=exchange,
        queue_prefix=queue_prefix,
        smtp_port=sink.port,
        DISPATCH_LEASE_S=str(LEASE_S),
    )
    started = Cluster(env, tmp_path, sink)
    try:
        yield started
    finally:
        for process in started.processes:
            process.kill()
        sink.stop()
        async with amqp.channel() as channel:
            for name in service_queues(f"{queue_prefix}notifications", (100, 500)):
                await channel.queue_delete(name)


async def holds(condition: Callable[[], Any], *, duration: float, what: str) -> None:
    """`condition` stays true for `duration` seconds (for what must NOT happen)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        assert result, what
        await asyncio.sleep(0.05)


async def until(
    wait_until: Callable[..., Any], condition: Callable[[], Any], *, timeout: float, what: str, cluster: Cluster
) -> Any:
    """wait_until, failing with what the SMTP server and the processes saw by then."""
    try:
        return await wait_until(condition, timeout=timeout, message=what)
    except pytest.fail.Exception:
        pytest.fail(f"timed out after {timeout}s: {what}\nsmtp: {cluster.sink.trace}\n{cluster.logs_tail()}")


async def only_doc(db: Any) -> dict[str, Any] | None:
    docs = [doc async for doc in db.notifications.find({})]
    assert len(docs) <= 1
    return docs[0] if docs else None


async def test_a_killed_sender_s_email_goes_again_within_the_lease_and_a_live_one_keeps_its_claim(
    cluster, db, bus_factory, announcements, wait_until
):
    sink = cluster.sink
    sink.hold()  # the server is slow: DATA waits until released
    first = await cluster.start()
    publisher = await bus_factory("publisher")
    await publisher.publish(rejected())
    await wait_until(lambda: sink.data_started == 1, timeout=10, message="the first DATA began")
    claimed = await only_doc(db)
    assert claimed is not None and claimed["claim"] and claimed["status"] == "pending"

    # Another replica comes up and polls every 50 ms while the first one waits on the server for
    # several leases: the claim stays the first one's, renewed by its heartbeat.
    second = await cluster.start()
    lapsed = claimed["claimed_until"]

    async def still_the_first_s() -> bool:
        doc = await only_doc(db)
        return doc is not None and doc["claim"] == claimed["claim"] and sink.data_started == 1

    await holds(still_the_first_s, duration=3 * LEASE_S, what="a live sender's claim was taken over")
    renewed = await only_doc(db)
    assert renewed is not None and renewed["claimed_until"] > lapsed  # heartbeat

    # The server accepts the email and the first process dies before it can record that.
    sink.kill_senders(1, [first.pid, second.pid])
    sink.release()
    [kill] = await until(
        wait_until, sink.killed, timeout=10, what="the sender killed after the server accepted", cluster=cluster
    )
    assert kill.pid == first.pid

    received = await until(
        wait_until,
        lambda: len(sink.received()) >= 2 and sink.received(),
        timeout=RESEND_WITHIN_S + 10,
        what="the email again",
        cluster=cluster,
    )
    original, again = received
    assert again.at - kill.at < RESEND_WITHIN_S, f"resent {again.at - kill.at:.1f}s after the crash"
    assert again.message_id == original.message_id and again.raw == original.raw  # the same email
    doc = await wait_until(lambda: _settled(db), timeout=10, message="the resend recorded")
    assert doc["status"] == "sent" and doc["smtp_message_id"] == original.message_id
    assert [a["outcome"] for a in doc["attempt_log"]] == ["interrupted", "sent"]
    assert doc["attempts"] == 2 and doc["claim"] is None
    [sent] = await wait_until(lambda: announcements.of("notification.sent"), timeout=10)
    assert sent.data["attempts"] == 2
    assert len(sink.received()) == 2 and second.alive()


async def test_an_email_whose_resend_is_interrupted_too_is_not_sent_a_third_time(
    cluster, db, bus_factory, announcements, wait_until
):
    sink = cluster.sink
    first, second = await cluster.start(), await cluster.start()
    sink.kill_senders(2, [first.pid, second.pid])  # whoever sends it dies; so does whoever resends it
    publisher = await bus_factory("publisher")
    await publisher.publish(rejected())
    kills = await until(
        wait_until,
        lambda: len(sink.killed()) == 2 and sink.killed(),
        timeout=RESEND_WITHIN_S + 20,
        what="two senders killed",
        cluster=cluster,
    )
    assert {k.pid for k in kills} == {first.pid, second.pid}
    original, again = sink.received()
    assert again.message_id == original.message_id and again.raw == original.raw
    assert again.at - kills[0].at < RESEND_WITHIN_S, f"resent {again.at - kills[0].at:.1f}s after the crash"

    third = await cluster.start()
    doc = await until(
        wait_until,
        lambda: _settled(db),
        timeout=RESEND_WITHIN_S + 15,
        what="the third sender settles without sending",
        cluster=cluster,
    )
    assert doc["status"] == "failed" and "interrupted" in doc["error"]
    assert [a["outcome"] for a in doc["attempt_log"]] == ["interrupted", "interrupted"]
    [failed] = await wait_until(lambda: announcements.of("notification.failed"), timeout=10)
    assert failed.data["status"] == "failed"
    assert len(sink.received()) == 2 and third.alive()


async def _settled(db: Any) -> dict[str, Any] | None:
    doc = await only_doc(db)
    return doc if doc is not None and doc["status"] != "pending" and doc["claim"] is None else None


async def test_the_outcome_is_recorded_when_the_server_accepts_and_the_connection_serves_the_next_email(
    cluster, db, bus_factory, wait_until
):
    sink = cluster.sink
    sink.hold_quit()  # were a QUIT on the way to recording the outcome, recording would wait for it
    await cluster.start()
    publisher = await bus_factory("publisher")
    await publisher.publish(rejected())
    doc = await until(wait_until, lambda: _settled(db), timeout=5, what="recorded, no QUIT awaited", cluster=cluster)
    assert doc["status"] == "sent" and len(sink.received()) == 1
    assert sink.quits_started == 0  # the connection stays open for the next email

    await publisher.publish(rejected())
    await until(wait_until, lambda: _all_sent(db, 2), timeout=5, what="the second email recorded", cluster=cluster)
    peers = [line.split(": ")[0] for line in sink.trace if line.endswith(": DATA")]
    assert len(peers) == 2 and peers[0] == peers[1], sink.trace  # one connection, one EHLO, for both
    sink.release_quit()


async def _all_sent(db: Any, count: int) -> bool:
    docs = [doc async for doc in db.notifications.find({})]
    return len(docs) == count and all(doc["status"] == "sent" and doc["claim"] is None for doc in docs)
