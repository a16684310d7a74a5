"""`python -m services.disputes`: serve the disputes API (default 127.0.0.1:8005)."""

from __future__ import annotations

from services.disputes.app import create_app
from services.disputes.settings import Settings
from shared.service import serve


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
