"""`python -m services.returns`: serve the returns API (default 127.0.0.1:8001)."""

from __future__ import annotations

import uvicorn

from services.returns.app import create_app
from services.returns.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()
