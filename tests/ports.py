"""A free local TCP port, for the servers and services tests start of their own."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing is bound to on 127.0.0.1 right now (the kernel's pick; free until someone binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
