"""The bench's witness, in its own process: an SMTP sink and an independent event subscriber.

    python -m bench.observer --dir OUT --smtp-port 28025 --amqp-url URL --exchange X --queue Q [--durable]

Kept out of the load generator's process so its timestamps are not delayed by the client's busy
event loop. Writes, under OUT:
  mails.jsonl    one line per SMTP message: t (receive time, epoch s), notification_id, message_id, to
  events.jsonl   one line per delivered event: t, id, type, subject, return_id (of refund.* events),
                 time (event time, epoch s), sequence
  status.json    running counts, rewritten twice a second (the bench polls it)
  ready          created once both listeners are up
  faults.jsonl   what the fault runs asked of it (below), with times
Each line is flushed when written; SIGTERM flushes and exits.

For the fault runs (bench/chaos/): `--durable` makes the witness's queue a durable quorum queue
whose messages are acked once written, so a broker stop or kill -9 loses none of them; SIGUSR1
closes the SMTP listener (an outage: connections are refused) and SIGUSR2 opens it again; a file
OUT/arm-kill holding a process group id makes the sink kill -9 that group 2 ms after it answered
250 to the next message (the window between the SMTP server's 250 and the sender recording it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from collections import Counter
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika

from bench.sink import BlockDataSMTP

# Bound on the bench's exchange. notification.* is left out on purpose: with nobody bound the
# broker returns them, which is what happens in production, and binding them would add load.
BINDINGS = ("return.#", "refund.#", "seller.#", "buyer.#")


def _header(raw: bytes, name: bytes) -> str | None:
    """One header's value from the head of a message, without parsing the whole MIME tree."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    prefix = name.lower() + b":"
    for line in head.split(b"\r\n"):
        if line[: len(prefix)].lower() == prefix:
            return line[len(prefix) :].strip().decode("latin-1")
    return None


class Recorder:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.mails = (out / "mails.jsonl").open("a", buffering=1)
        self.events = (out / "events.jsonl").open("a", buffering=1)
        self.counts: Counter[str] = Counter()
        self.last_mail_t = self.last_event_t = 0.0

    def mail(self, record: dict[str, Any]) -> None:
        self.mails.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.counts["mails"] += 1
        self.last_mail_t = record["t"]

    def event(self, record: dict[str, Any]) -> None:
        self.events.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.counts[record["type"]] += 1
        self.last_event_t = record["t"]

    def fault(self, record: dict[str, Any]) -> None:
        with (self.out / "faults.jsonl").open("a") as f:
            f.write(json.dumps(record, separators=(",", ":")) + "\n")

    def status(self) -> None:
        tmp = self.out / "status.json.tmp"
        tmp.write_text(
            json.dumps(
                {
                    "counts": dict(self.counts),
                    "last_mail_t": self.last_mail_t,
                    "last_event_t": self.last_event_t,
                    "at": time.time(),
                }
            )
        )
        tmp.replace(self.out / "status.json")

    def close(self) -> None:
        self.status()
        self.mails.close()
        self.events.close()


class SinkHandler:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.arm = recorder.out / "arm-kill"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        t = time.time()
        raw = envelope.original_content or envelope.content
        notification_id = _header(raw, b"X-Notification-Id")
        self.recorder.mail(
            {
                "t": t,
                "notification_id": notification_id,
                "message_id": _header(raw, b"Message-ID"),
                "to": list(envelope.rcpt_tos),
            }
        )
        if self.arm.exists():
            self._kill_after_reply(notification_id)
        return "250 OK"

    def _kill_after_reply(self, notification_id: str | None) -> None:
        try:
            pgid = int(self.arm.read_text().strip())
            self.arm.unlink()
        except (OSError, ValueError):
            return

        def kill() -> None:
            try:
                os.killpg(pgid, signal.SIGKILL)
                outcome = "killed"
            except ProcessLookupError:
                outcome = "gone"
            self.recorder.fault(
                {
                    "t": time.time(),
                    "fault": "kill-after-250",
                    "pgid": pgid,
                    "notification_id": notification_id,
                    "outcome": outcome,
                }
            )

        asyncio.get_running_loop().call_later(0.002, kill)


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--smtp-host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument(
        "--durable", action="store_true", help="a durable quorum queue, acked after writing (survives a broker restart)"
    )
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(args.dir)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    handler = SinkHandler(recorder)

    async def listen() -> asyncio.AbstractServer:
        return await loop.create_server(
            lambda: BlockDataSMTP(handler, hostname="bench-sink", data_size_limit=None), args.smtp_host, args.smtp_port
        )

    smtp: list[asyncio.AbstractServer | None] = [await listen()]

    def smtp_down() -> None:  # an outage: new connections are refused
        if smtp[0] is not None:
            smtp[0].close()
            smtp[0] = None
            recorder.fault({"t": time.time(), "fault": "smtp-down"})

    async def smtp_up() -> None:
        if smtp[0] is None:
            smtp[0] = await listen()
            recorder.fault({"t": time.time(), "fault": "smtp-up"})

    loop.add_signal_handler(signal.SIGUSR1, smtp_down)
    loop.add_signal_handler(signal.SIGUSR2, lambda: asyncio.ensure_future(smtp_up()))

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        t = time.time()
        try:
            body = json.loads(message.body)
        except ValueError:
            body = {}
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        recorder.event(
            {
                "t": t,
                "id": message.message_id or body.get("id"),
                "type": message.routing_key,
                "subject": body.get("subject"),
                # refund.* events are about a refund: their return, so a witness can count them per return
                "return_id": data.get("return_id"),
                "time": _epoch(body.get("time")),
                "sequence": body.get("sequence"),
                "redelivered": message.redelivered,
            }
        )
        if args.durable:
            # The channel may have gone with the broker: the message comes again and is counted twice.
            with suppress(Exception):
                await message.ack()

    async def subscribe() -> tuple[aio_pika.abc.AbstractConnection, asyncio.Event]:
        # A plain connection, re-made by the loop below: the witness must not depend on the
        # client's own recovery, which the fault runs put to the test in the services.
        connection = await aio_pika.connect(args.amqp_url, client_properties={"connection_name": "bench-observer"})
        lost = asyncio.Event()
        connection.close_callbacks.add(lambda *_: lost.set())
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=256)
        exchange = await channel.declare_exchange(args.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        if args.durable:
            # Survives a broker stop or kill -9 with everything routed to it; the bench deletes it.
            queue = await channel.declare_queue(args.queue, durable=True, arguments={"x-queue-type": "quorum"})
        else:
            # Exclusive and classic: a witness, not part of the system under test; it vanishes with us.
            queue = await channel.declare_queue(args.queue, exclusive=True, auto_delete=True)
        for key in BINDINGS:
            await queue.bind(exchange, routing_key=key)
        await queue.consume(on_message, no_ack=not args.durable)
        return connection, lost

    async def keep_subscribed(connection: aio_pika.abc.AbstractConnection, lost: asyncio.Event) -> None:
        while not stop.is_set():
            gone = asyncio.ensure_future(lost.wait())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait([gone, stopping], return_when=asyncio.FIRST_COMPLETED)
            gone.cancel()
            stopping.cancel()
            if stop.is_set():
                await connection.close()
                return
            recorder.fault({"t": time.time(), "fault": "witness-disconnected"})
            print("observer: connection lost; reconnecting", flush=True)
            with suppress(Exception):
                await connection.close()
            while not stop.is_set():
                try:
                    connection, lost = await subscribe()
                    recorder.fault({"t": time.time(), "fault": "witness-reconnected"})
                    print("observer: reconnected", flush=True)
                    break
                except Exception as exc:  # noqa: BLE001 - the broker is not back yet
                    print(f"observer: reconnect failed: {exc!r}", flush=True)
                    await asyncio.sleep(0.5)

    subscriber = asyncio.create_task(keep_subscribed(*await subscribe()))
    (args.dir / "ready").write_text(str(time.time()))
    print(f"observer: SMTP on {args.smtp_host}:{args.smtp_port}, queue {args.queue} on {args.exchange}", flush=True)
    while not stop.is_set():
        recorder.status()
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            pass
    if smtp[0] is not None:
        smtp[0].close()
    await asyncio.wait([subscriber], timeout=5)
    recorder.close()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # plain asyncio works too
        asyncio.run(main())
    else:
        uvloop.run(main())
