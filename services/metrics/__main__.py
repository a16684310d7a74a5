"""`python -m services.metrics`: serve the metrics service on settings.host:settings.port (8004)."""

from __future__ import annotations

import uvicorn

from services.metrics.app import create_app
from services.metrics.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()
