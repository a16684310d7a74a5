"""Emails sent / deferred per template and the event->email latency, counted as the attempts are recorded."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.integration.notifications.test_notifications_delivery import event


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def emails(template: str, outcome: str) -> float:
    return value("returns_platform_emails_total", template=template, outcome=outcome)


async def test_sent_emails_and_their_latency_are_counted_per_template(service, smtp, wait_until):
    template = "buyer/return_requested"
    sent, timed = emails(template, "sent"), value("returns_platform_event_to_email_seconds_count", template=template)
    latency = value("returns_platform_event_to_email_seconds_sum", template=template)
    await service.publish(event("return.created", 1))
    await wait_until(lambda: emails(template, "sent") == sent + 1, timeout=10, message="one email counted sent")
    assert value("returns_platform_event_to_email_seconds_count", template=template) == timed + 1
    # measured from the event's own time (the sample's, long past), not from when it was handled
    assert value("returns_platform_event_to_email_seconds_sum", template=template) - latency > 3600

    smtp.stop()  # the server goes away: the next attempt is deferred, not sent
    deferred = emails("buyer/return_authorized", "deferred")
    await service.publish(event("return.authorized", 2))
    await wait_until(
        lambda: emails("buyer/return_authorized", "deferred") > deferred, timeout=15, message="an attempt deferred"
    )
