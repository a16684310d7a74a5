"""`python -m services.disputes`: serve the disputes API (default 127.0.0.1:8005)."""

from __future__ import annotations

import uvicorn

from services.disputes.app import create_app
from services.disputes.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()
