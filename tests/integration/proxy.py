"""A TCP proxy in front of RabbitMQ that a test can cut (a network blip) or refuse (broker down)."""

from __future__ import annotations

import asyncio

import aio_pika


class FlakyProxy:
    """`url = await proxy.start(amqp_url)`; `cut()` drops every connection, `refuse()` also turns
    new ones away until `resume()`."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.writers: list[asyncio.StreamWriter] = []
        self.refusing = False

    @classmethod
    def for_url(cls, amqp_url: str) -> FlakyProxy:
        url = aio_pika.connection.make_url(amqp_url)
        return cls(url.host or "127.0.0.1", url.port or 5672)

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def url(self, amqp_url: str, reconnect_interval: float = 0.2) -> str:
        """Start, and `amqp_url` pointed at the proxy with a short reconnect interval."""
        port = await self.start()
        url = aio_pika.connection.make_url(amqp_url).with_port(port)
        return str(url.update_query(reconnect_interval=str(reconnect_interval)))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    def refuse(self) -> None:
        """The broker is down: current connections drop, new ones are turned away."""
        self.refusing = True
        self.cut()

    def resume(self) -> None:
        self.refusing = False

    async def close(self) -> None:
        self.cut()
        self.server.close()
