"""`python -m services.refunds`: serve the refunds API (default 127.0.0.1:8002)."""

from __future__ import annotations

from services.refunds.app import create_app
from services.refunds.settings import Settings
from shared.service import serve


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
