"""The bench's SMTP sink receives exactly what aiosmtpd's own server receives, over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP

from bench.sink import BlockDataSMTP, unstuff


class Keep:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Kept"


async def _server(kind: type[SMTP], handler: Keep) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: kind(handler, hostname="sink", data_size_limit=None), "127.0.0.1", 0)


@pytest.fixture
async def servers() -> AsyncIterator[dict[type[SMTP], tuple[int, Keep]]]:
    started: dict[type[SMTP], tuple[asyncio.Server, Keep]] = {}
    for kind in (SMTP, BlockDataSMTP):
        handler = Keep()
        started[kind] = (await _server(kind, handler), handler)
    yield {kind: (server.sockets[0].getsockname()[1], handler) for kind, (server, handler) in started.items()}
    for server, _ in started.values():
        server.close()
        await server.wait_closed()


BODY_LINES = [f"line {i:03d} =C3=A9 some quoted-printable text of a usual width, and more of it" for i in range(150)]
MESSAGES = [
    ("plain", b"Subject: one\r\n\r\n" + "\r\n".join(BODY_LINES).encode() + b"\r\n"),
    ("dots", b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\n..\r\nmid . dot\r\n"),
    ("large", b"Subject: large\r\n\r\n" + b"x" * 900 + b"\r\n" + ("\r\n".join(BODY_LINES) * 20).encode() + b"\r\n"),
    ("no final line break", b"Subject: cut\r\n\r\nthe last line"),
]


@pytest.mark.parametrize(("name", "message"), MESSAGES, ids=[name for name, _ in MESSAGES])
async def test_the_sink_receives_what_aiosmtpd_receives(
    servers: dict[type[SMTP], tuple[int, Keep]], name: str, message: bytes
) -> None:
    replies = {}
    for kind, (port, _) in servers.items():
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client:
            sent = await client.sendmail("bench@shop.example", ["a.buyer+x@mail.example"], message)
            replies[kind] = sent[1]
    assert replies[BlockDataSMTP] == "Kept"
    assert servers[BlockDataSMTP][1].received == servers[SMTP][1].received
    assert len(servers[SMTP][1].received) == 1


async def test_a_connection_carries_one_email_after_another(servers: dict[type[SMTP], tuple[int, Keep]]) -> None:
    port, handler = servers[BlockDataSMTP]
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client:
        for i in range(3):
            await client.sendmail("bench@shop.example", [f"b{i}@mail.example"], f"Subject: {i}\r\n\r\n.{i}\r\n")
    assert [(rcpt, data) for _, rcpt, data in handler.received] == [
        ([f"b{i}@mail.example"], f"Subject: {i}\r\n\r\n.{i}\r\n".encode()) for i in range(3)
    ]


async def test_addresses_the_plain_pattern_does_not_cover_go_to_aiosmtpd(
    servers: dict[type[SMTP], tuple[int, Keep]],
) -> None:
    for port, _ in servers.values():
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client:
            await client.sendmail('"odd one"@shop.example', ['"a b"@mail.example'], b"Subject: q\r\n\r\nhi\r\n")
    assert servers[BlockDataSMTP][1].received == servers[SMTP][1].received
    assert servers[SMTP][1].received[0][:2] == ('"odd one"@shop.example', ['"a b"@mail.example'])


def test_unstuff_removes_one_transparency_dot_per_line() -> None:
    assert unstuff(b"..a\r\n.b\r\n...\r\nc.\r\n") == b".a\r\nb\r\n..\r\nc.\r\n"
