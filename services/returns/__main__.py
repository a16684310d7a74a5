"""`python -m services.returns`: serve the returns API (default 127.0.0.1:8001)."""

from __future__ import annotations

from services.returns.app import create_app
from services.returns.settings import Settings
from shared.service import serve


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
