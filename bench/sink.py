"""The bench's SMTP sink: aiosmtpd's server, reading a message's data in blocks instead of by line.

aiosmtpd reads DATA one line at a time through its StreamReader (a coroutine step, a debug log call
and two joins per line). The emails here are some 130 lines each and the sink shares the machine it
measures, so that cost was taken from the services: about 1.3 ms of CPU per email, 9 ms per
lifecycle. MAIL and RCPT parse a plain `<address>` with one regular expression instead of the email
package's header parser. Everything else (the dialogue, the envelope, the handler's DATA hook and its
reply) is aiosmtpd's own.
"""

from __future__ import annotations

import re

from aiosmtpd.smtp import MISSING, SMTP, syntax

# The end of the data (RFC 5321 §4.1.1.4): a line holding only a dot. The CRLF before it ends the
# last line of the message, so a message with no line at all is the bare dot line.
_END = b"\r\n.\r\n"
_BLOCK = 1 << 16
# `<local@domain>` and what follows it, for the plain addresses the services send to; anything else
# goes through aiosmtpd's own parser (the email package's, a few hundred function calls each).
_PLAIN_PATH = re.compile(r"\s*<([A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(.*)", re.S)


def unstuff(data: bytes) -> bytes:
    """The message without the data's transparency dots (RFC 5321 §4.5.2): `..x` was `.x`."""
    if data.startswith(b"."):
        data = data[1:]
    return data.replace(b"\r\n.", b"\r\n")


class BlockDataSMTP(SMTP):
    """aiosmtpd's SMTP with a DATA command that reads up to the end marker in blocks.

    No size or line-length limit (the sink takes what the services send, `data_size_limit=None`),
    and PIPELINING is not offered, so nothing follows the end marker before our reply.
    """

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        plain = _PLAIN_PATH.fullmatch(arg)
        if plain is None:
            return super()._getaddr(arg)
        return plain.group(1), plain.group(2).lstrip()

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's name
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        received = bytearray(b"\r\n")  # so that an empty message's bare dot line ends it too
        while not received.endswith(_END):
            block = await self._reader.read(_BLOCK)
            if not block:  # the client went away mid-message
                return
            received += block
        if received.find(_END) != len(received) - len(_END):
            await self.push("503 Error: command sent before the reply to DATA (PIPELINING is not offered)")
            self._set_post_data_state()
            return
        content = unstuff(bytes(received[2 : -len(_END) + 2]))
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)
