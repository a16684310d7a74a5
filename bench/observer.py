"""The bench's witness, in its own process: an SMTP sink and an independent event subscriber.

    python -m bench.observer --dir OUT --smtp-port 28025 --amqp-url URL --exchange X --queue Q

Kept out of the load generator's process so its timestamps are not delayed by the client's busy
event loop. Writes, under OUT:
  mails.jsonl    one line per SMTP message: t (receive time, epoch s), notification_id, message_id, to
  events.jsonl   one line per delivered event: t, id, type, subject, time (event time, epoch s), sequence
  status.json    running counts, rewritten twice a second (the bench polls it)
  ready          created once both listeners are up
Each line is flushed when written; SIGTERM flushes and exits.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
from aiosmtpd.smtp import SMTP

# Bound on the bench's exchange. notification.* is left out on purpose: with nobody bound the
# broker returns them, which is what happens in production, and binding them would add load.
BINDINGS = ("return.#", "refund.#", "seller.#", "buyer.#")


def _header(raw: bytes, name: bytes) -> str | None:
    """One header's value from the head of a message, without parsing the whole MIME tree."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    prefix = name.lower() + b":"
    for line in head.split(b"\r\n"):
        if line[: len(prefix)].lower() == prefix:
            return line[len(prefix):].strip().decode("latin-1")
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

    def status(self) -> None:
        tmp = self.out / "status.json.tmp"
        tmp.write_text(json.dumps({"counts": dict(self.counts), "last_mail_t": self.last_mail_t,
                                   "last_event_t": self.last_event_t, "at": time.time()}))
        tmp.replace(self.out / "status.json")

    def close(self) -> None:
        self.status()
        self.mails.close()
        self.events.close()


class SinkHandler:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        t = time.time()
        raw = envelope.original_content or envelope.content
        self.recorder.mail({"t": t, "notification_id": _header(raw, b"X-Notification-Id"),
                            "message_id": _header(raw, b"Message-ID"), "to": list(envelope.rcpt_tos)})
        return "250 OK"


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
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(args.dir)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    handler = SinkHandler(recorder)
    smtp = await loop.create_server(lambda: SMTP(handler, hostname="bench-sink", data_size_limit=None),
                                    args.smtp_host, args.smtp_port)

    connection = await aio_pika.connect_robust(args.amqp_url, client_properties={"connection_name": "bench-observer"})
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=256)
    exchange = await channel.declare_exchange(args.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    # Exclusive and classic: a witness, not part of the system under test; it vanishes with us.
    queue = await channel.declare_queue(args.queue, exclusive=True, auto_delete=True)
    for key in BINDINGS:
        await queue.bind(exchange, routing_key=key)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        t = time.time()
        try:
            body = json.loads(message.body)
        except ValueError:
            body = {}
        recorder.event({"t": t, "id": message.message_id or body.get("id"), "type": message.routing_key,
                        "subject": body.get("subject"), "time": _epoch(body.get("time")),
                        "sequence": body.get("sequence"), "redelivered": message.redelivered})

    await queue.consume(on_message, no_ack=True)
    (args.dir / "ready").write_text(str(time.time()))
    print(f"observer: SMTP on {args.smtp_host}:{args.smtp_port}, queue {args.queue} on {args.exchange}", flush=True)
    while not stop.is_set():
        recorder.status()
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            pass
    smtp.close()
    await connection.close()
    recorder.close()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # plain asyncio works too
        asyncio.run(main())
    else:
        uvloop.run(main())
