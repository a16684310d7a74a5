"""Development SMTP sink: accepts every message and keeps it in a Maildir.

    python deploy/local/mailsink.py --maildir .local/mail [--host 127.0.0.1] [--port 1025] [--http-port 1080]

Each message lands in <maildir>/new/ as one RFC 5322 file (written atomically: tmp/ then rename),
with the SMTP envelope added as X-MailFrom / X-RcptTo / X-Peer headers (aiosmtpd's Mailbox handler).

With --http-port, a small JSON API (stdlib http.server) lists what arrived:
    GET    /messages        {"maildir": "...", "messages": [{"id", "mail_from", "rcpt_tos", "from", "to",
                             "subject", "date", "received_at", "size"}, ...]}  oldest first
    GET    /messages/<id>   the raw message (message/rfc822)
    DELETE /messages        empties the Maildir
"""

from __future__ import annotations

import argparse
import json
import mailbox
import signal
import sys
import threading
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


def summaries(maildir: Path) -> list[dict[str, Any]]:
    found = []
    for folder in ("new", "cur"):
        for path in (maildir / folder).glob("*"):
            try:
                stat = path.stat()
                with path.open("rb") as f:
                    headers = BytesHeaderParser(policy=default_policy).parse(f)
            except FileNotFoundError:  # removed meanwhile
                continue
            found.append(
                {
                    "id": path.name.split(":")[0],
                    "mail_from": headers.get("X-MailFrom"),
                    "rcpt_tos": [r.strip() for r in str(headers.get("X-RcptTo", "")).split(",") if r.strip()],
                    "from": str(headers.get("From", "")),
                    "to": str(headers.get("To", "")),
                    "subject": str(headers.get("Subject", "")),
                    "date": str(headers.get("Date", "")),
                    "received_at": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(),
                    "size": stat.st_size,
                    "_mtime": stat.st_mtime_ns,
                }
            )
    found.sort(key=lambda m: (m.pop("_mtime"), m["id"]))
    return found


def http_handler(maildir: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, value: Any) -> None:
            self._send(status, json.dumps(value, indent=1).encode())

        def do_GET(self) -> None:
            path = self.path.split("?")[0].rstrip("/")
            if path in ("", "/messages"):
                self._json(200, {"maildir": str(maildir), "messages": summaries(maildir)})
                return
            if path.startswith("/messages/"):
                wanted = path.removeprefix("/messages/")
                for folder in ("new", "cur"):
                    for file in (maildir / folder).glob(f"{wanted}*"):
                        if file.name.split(":")[0] == wanted:
                            self._send(200, file.read_bytes(), "message/rfc822")
                            return
            self._json(404, {"error": "not found"})

        def do_DELETE(self) -> None:
            if self.path.rstrip("/") != "/messages":
                self._json(404, {"error": "not found"})
                return
            mailbox.Maildir(maildir).clear()
            self._json(200, {"deleted": True})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--http-port", type=int, default=0, help="JSON listing of messages; 0 = off")
    args = parser.parse_args()

    maildir = Path(args.maildir).resolve()
    mailbox.Maildir(maildir, create=True)
    controller = Controller(Mailbox(maildir), hostname=args.host, port=args.port)
    controller.start()
    print(f"mailsink: SMTP on {args.host}:{args.port}, Maildir {maildir}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    web = None
    if args.http_port:
        try:
            web = ThreadingHTTPServer((args.host, args.http_port), http_handler(maildir))
        except OSError as exc:
            print(f"mailsink: HTTP listing disabled, port {args.http_port}: {exc}", file=sys.stderr, flush=True)
        else:
            threading.Thread(target=web.serve_forever, daemon=True).start()
            print(f"mailsink: messages listed at http://{args.host}:{args.http_port}/messages", flush=True)

    while not stop.wait(1):
        pass
    if web is not None:
        web.shutdown()
    controller.stop()
    print("mailsink: stopped", flush=True)


if __name__ == "__main__":
    main()
