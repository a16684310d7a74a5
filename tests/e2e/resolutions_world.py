"""What the outside world does with resolutions (docs/product.md §12): keep-it offers, the order
system's replacement confirmations, store credit, and what it sees of them in the emails.

Only public interfaces: the returns and refunds APIs, the broker (the harness's tap) and the SMTP
sink. The order system and a checkout are played by `service` tokens, as they call the platform.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from tests.e2e.harness import Email, Stack, eventually
from tests.e2e.world import Party, World, ok

# ---- parties ------------------------------------------------------------------------------------


def order_system(world: World) -> Party:
    """The upstream order system: ships replacements and confirms them."""
    return Party(world.stack, "service", f"orders-{world.tag}")


def checkout(world: World) -> Party:
    """A checkout that spends buyers' store credit."""
    return Party(world.stack, "service", f"checkout-{world.tag}")


# ---- returns: offers and replacements -----------------------------------------------------------


async def make_offer(party: Party, return_id: str, amount: dict[str, Any], note: str = "") -> httpx.Response:
    body = {"amount": amount, "note": note or "Keep it, with a partial refund."}
    return await party.call("returns", "POST", f"/v1/returns/{return_id}/offers", json=body)


async def answer_offer(
    party: Party, return_id: str, offer_id: str, answer: str, note: str | None = None
) -> httpx.Response:
    """`answer` is `accept` or `decline`."""
    body = {"note": note} if note else {}
    return await party.call("returns", "POST", f"/v1/returns/{return_id}/offers/{offer_id}/{answer}", json=body)


async def confirm_replacement(party: Party, return_id: str, body: dict[str, Any]) -> httpx.Response:
    return await party.call("returns", "PUT", f"/v1/returns/{return_id}/replacement", json=body)


async def return_in(party: Party, return_id: str, status: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        ret = await party.get_return(return_id)
        return ret if ret["status"] == status else None

    return await eventually(reached, what=f"{return_id} {status}")


# ---- refunds: store credit ----------------------------------------------------------------------


async def store_credit(party: Party, buyer_id: str) -> httpx.Response:
    return await party.call("refunds", "GET", f"/v1/store-credit/{buyer_id}")


async def store_credit_entries(party: Party, buyer_id: str) -> list[dict[str, Any]]:
    return ok(await party.call("refunds", "GET", f"/v1/store-credit/{buyer_id}/entries"), 200)["items"]


async def debit(party: Party, buyer_id: str, amount: dict[str, Any], reference: str, key: str | None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else None
    body = {"amount": amount, "reference": reference, "note": f"Checkout {reference}"}
    return await party.call("refunds", "POST", f"/v1/store-credit/{buyer_id}/debits", json=body, headers=headers)


async def refunds_of_order(party: Party, order_id: str) -> list[dict[str, Any]]:
    return ok(await party.call("refunds", "GET", "/v1/refunds", params={"order_id": order_id}), 200)["items"]


def error_fields(response: httpx.Response) -> list[str]:
    """The fields a problem+json 422 names."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return [error["field"] for error in response.json().get("errors", [])]


# ---- emails by the event that caused them ---------------------------------------------------------


def emails_by_event(stack: Stack, return_id: str) -> list[tuple[str, str, Email]]:
    """(recipient, event type, email) of every email caused by an event about the return: its own
    events, its refunds' and the store-credit grant that names it. Attributed through the
    `notification.sent` events (event_id, event_type) and the emails' X-Notification-Id."""
    about = {e.id for e in stack.tap.of_return(return_id)}
    sent = {
        e.data["notification_id"]: e.data["event_type"]
        for e in stack.tap.of_type("notification.sent")
        if e.data["event_id"] in about
    }
    return [
        (mail.recipient, sent[mail.notification_id], mail)
        for mail in stack.mailbox.all()
        if mail.notification_id in sent
    ]


async def expect_emails_to(stack: Stack, return_id: str, recipient: str, event_types: list[str]) -> list[Email]:
    """Exactly one email to `recipient` for each of `event_types` (and none for any other event)."""
    want = Counter(event_types)

    def got() -> Counter[str]:
        return Counter(kind for to, kind, _ in emails_by_event(stack, return_id) if to == recipient)

    def arrived() -> bool:
        assert got() == want, f"emails to {recipient} about {return_id}: {dict(got())} != {dict(want)}"
        return True

    await eventually(arrived, what=f"the emails to {recipient} about {return_id}")
    return [mail for to, _, mail in emails_by_event(stack, return_id) if to == recipient]


async def expect_all_sent(stack: Stack, agent: Party, return_id: str) -> None:
    """Every email the notifications service recorded for the return was sent, and each once."""

    async def quiet() -> bool:
        records = await agent.notifications(return_id=return_id)
        assert records and all(r["status"] == "sent" for r in records), [(r["template"], r["status"]) for r in records]
        ids = {r["notification_id"] for r in records}
        mails = [mail.notification_id for mail in stack.mailbox.all() if mail.notification_id in ids]
        assert sorted(mails) == sorted(ids), f"{len(mails)} emails for {len(ids)} notifications of {return_id}"
        return True

    await eventually(quiet, what=f"all emails of {return_id} sent once")


def mail_of(mails: list[Email], stack: Stack, return_id: str, event_type: str) -> Email:
    [mail] = [m for to, kind, m in emails_by_event(stack, return_id) if kind == event_type and m in mails]
    return mail
