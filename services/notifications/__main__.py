"""`python -m services.notifications`: serve the notifications service on settings.host:port (8003)."""

from __future__ import annotations

import uvicorn

from services.notifications.app import create_app
from services.notifications.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()
