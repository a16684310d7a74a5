"""Local TCP ports: is one answering, and which process listens on it."""

from __future__ import annotations

import socket

import psutil


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def listener_pid(port: int) -> int | None:
    """The process listening on a local TCP port (needs root for other users' processes)."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return conn.pid
    except psutil.AccessDenied:
        return None
    return None
