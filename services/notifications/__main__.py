"""`python -m services.notifications`: serve the notifications service on settings.host:port (8003)."""

from __future__ import annotations

from services.notifications.app import create_app
from services.notifications.settings import Settings
from shared.service import serve


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
