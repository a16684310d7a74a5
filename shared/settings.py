"""Settings every service shares, read from the environment (pydantic-settings)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """Subclassed once per service; each service sets `service_name` and its own fields."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    service_name: str = "unnamed"
    host: str = "127.0.0.1"
    port: int = 8000
    http_keep_alive_s: int = Field(
        default=75,
        ge=1,
        description=(
            "How long the HTTP server keeps an idle keep-alive connection open. Longer than clients' and load "
            "balancers' own idle limits (httpx: 5 s, AWS ALB: 60 s), so it never closes a connection at the "
            "moment a client sends on it again (the client would see a reset, not an answer)."
        ),
    )
    public_base_url: str | None = Field(
        default=None,
        description="The base URL callers reach this service at, for the OpenAPI document's `servers`; "
        "absent: http://localhost:<port>.",
    )
    mongodb_url: str = "mongodb://127.0.0.1:27017"
    mongodb_db: str | None = Field(default=None, description="Database name; defaults to `returns_platform_<service>`.")
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    exchange: str = "returns.events"
    orders_exchange: str = "orders.events"
    queue_prefix: str = Field(default="", description="Prefix for this service's queue names (test isolation).")
    retry_delays_ms: list[int] = Field(
        default=[1000, 5000, 30000], description="Delay before each redelivery of a failed message."
    )
    prefetch: int = 32
    ack_batch_ms: int = Field(
        default=50,
        ge=0,
        le=1000,
        description=(
            "How long a consumed event's ack may wait to go out with others (one AMQP frame for a run of "
            "deliveries, shared/acks.py). A crash meanwhile only redelivers those events; 0 acks each at once."
        ),
    )
    outbox_poll_ms: int = Field(
        default=15000,
        ge=1,
        description=(
            "How often the outbox relay sweeps for unpublished events (one indexed query per outbox collection), "
            "besides once at start-up. Events are published right after their commit and failed publishes are "
            "retried in-process with back-off; the sweep only finds what a crash or a dead replica left behind."
        ),
    )
    outbox_claim_ms: int = Field(
        default=30000,
        ge=1,
        description=(
            "How long a commit's claim keeps other replicas' relays away from its document while this "
            "replica's relay publishes its events. After a crash, that document's events wait this long (and "
            "up to OUTBOX_POLL_MS more) for another relay. Shorter than a stall of a loaded machine, two "
            "replicas publish the same events: 5 s did on a slow CI run."
        ),
    )
    outbox_concurrency: int = Field(
        default=64,
        ge=1,
        description=(
            "Documents the outbox relay publishes at once (each one's events in order, each confirmed by the "
            "broker; its release from the outbox is then written while the slot serves another document). Under a "
            "burst of commits too few slots leave events waiting in the outbox: with 16 (and the release still "
            "written inside the slot), the returns service under the bench's closed loop published its events 85 s "
            "after their commit."
        ),
    )
    inbox_retention_days: int = Field(
        default=14,
        description=(
            "How long a service that keeps an inbox of processed event ids keeps them "
            "(none of the four does: their handlers are idempotent)."
        ),
    )
    marketplaces_file: str | None = Field(
        default=None,
        description=(
            "YAML file of the marketplaces this deployment serves (docs/configuration.md); absent: the shipped "
            "profiles US, GB, DE, JP and CN. Every service must read the same file."
        ),
    )
    default_marketplace: str = Field(
        default="US",
        pattern=r"^[A-Z]{2}$",
        description="The marketplace a request means when it names none (a seller's policy without `marketplace`).",
    )
    jwt_algorithm: str = "HS256"
    jwt_secret: str | None = None
    jwt_public_key: str | None = Field(
        default=None, description="PEM public key when jwt_algorithm is RS256/ES256/EdDSA."
    )
    jwt_issuer: str = "returns-platform"
    jwt_jwks_url: str | None = Field(
        default=None,
        description=(
            "JWKS URL of the token issuer (asymmetric keys, `kid` selection, several valid at once for rotation); "
            "used instead of JWT_PUBLIC_KEY when set. JWT_ALGORITHM stays pinned."
        ),
    )
    jwt_jwks_cache_seconds: int = Field(default=300, ge=1, description="How long the fetched JWKS is kept.")
    cursor_secret: str | None = Field(
        default=None,
        description=(
            "Key list cursors are signed with (HMAC-SHA256). Default: derived from JWT_SECRET; without one, a random "
            "key per process (cursors then fail across replicas and restarts): set it when JWT_ALGORITHM is asymmetric."
        ),
    )
    clock_file: str | None = Field(default=None, description="Test only: file holding a time offset in seconds.")
    log_level: str = "INFO"
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description=(
            "OTLP/HTTP collector base URL (spans go to `<url>/v1/traces`); set, the service records and exports "
            "spans. Unset, W3C trace context is only carried from requests into events (docs/operations.md)."
        ),
    )
    max_body_bytes: int = 256 * 1024

    @property
    def database_name(self) -> str:
        return self.mongodb_db or f"returns_platform_{self.service_name}"

    @property
    def queue_name(self) -> str:
        return f"{self.queue_prefix}{self.service_name}"
