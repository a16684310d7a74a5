"""`python -m services.metrics`: serve the metrics service on settings.host:settings.port (8004)."""

from __future__ import annotations

from services.metrics.app import create_app
from services.metrics.settings import Settings
from shared.service import serve


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
