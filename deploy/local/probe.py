"""Does a server of the expected kind answer? Used by scripts/infra-up to reuse what already runs.

    python deploy/local/probe.py amqp|mongo|smtp|http HOST PORT      exit 0 = answers, 1 = not

amqp logs in as guest/guest; mongo also checks the wire version PyMongo needs (>= 9); http accepts
any HTTP response.
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request

TIMEOUT = 2.0


def amqp(host: str, port: int) -> bool:
    """A broker that accepts guest/guest (what AMQP_URL in .local/env says)."""
    with socket.create_connection((host, port), TIMEOUT) as s:
        s.settimeout(TIMEOUT)
        s.sendall(b"AMQP\x00\x00\x09\x01")
        frame = s.recv(7)
        if len(frame) != 7 or frame[0] != 1:  # a METHOD frame: connection.start
            return False
    import asyncio

    import aio_pika

    async def login() -> None:
        connection = await aio_pika.connect(f"amqp://guest:guest@{host}:{port}/", timeout=TIMEOUT)
        await connection.close()

    asyncio.run(login())
    return True


def smtp(host: str, port: int) -> bool:
    with socket.create_connection((host, port), TIMEOUT) as s:
        s.settimeout(TIMEOUT)
        banner = s.recv(512)
        s.sendall(b"QUIT\r\n")
        return banner.startswith(b"220")


def mongo(host: str, port: int) -> bool:
    from pymongo import MongoClient

    client = MongoClient(host, port, serverSelectionTimeoutMS=int(TIMEOUT * 1000), connectTimeoutMS=int(TIMEOUT * 1000))
    try:
        hello = client.admin.command("ismaster")
        if hello.get("maxWireVersion", 0) < 9:
            print(f"{host}:{port} answers with wire version {hello.get('maxWireVersion')} < 9", file=sys.stderr)
            return False
        return client.admin.command("ping").get("ok") == 1
    finally:
        client.close()


def http(host: str, port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://{host}:{port}/", timeout=TIMEOUT).close()
    except urllib.error.HTTPError:
        pass  # any HTTP answer will do (stripe-mock answers 401/404 without a key)
    return True


def main() -> int:
    kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    try:
        return 0 if {"amqp": amqp, "smtp": smtp, "mongo": mongo, "http": http}[kind](host, port) else 1
    except Exception as exc:  # noqa: BLE001 - any failure means "does not answer"
        print(f"{kind} {host}:{port}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
