"""Container health probe: GET http://127.0.0.1:$PORT<path> succeeds with 2xx, else exit 1.

Stdlib only (the runtime image has no curl). PORT defaults to the service's own port.
Usage: python healthcheck.py [/healthz|/readyz]
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORTS = {"returns": 8001, "refunds": 8002, "notifications": 8003, "metrics": 8004, "disputes": 8005}


def url(path: str, environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    port = environ.get("PORT") or DEFAULT_PORTS.get(environ.get("SERVICE", ""), 8000)
    return f"http://127.0.0.1:{port}{path}"


def main(argv: list[str]) -> int:
    target = url(argv[1] if len(argv) > 1 else "/healthz")
    try:
        with urllib.request.urlopen(target, timeout=3) as response:  # noqa: S310 - always http://127.0.0.1
            return 0 if 200 <= response.status < 300 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {target}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
