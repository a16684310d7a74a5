"""Settings of the notifications service: SMTP connection, sender identity, delivery retries."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.settings import CommonSettings


class Settings(CommonSettings):
    service_name: str = "notifications"
    port: int = 8003

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        default="none", description="`tls` = implicit TLS (port 465), `starttls` = upgrade after connect."
    )
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_validate_certs: bool = True
    smtp_timeout_s: float = 30.0

    mail_from: str = "Marketplace Returns <returns@marketplace.example>"
    message_id_domain: str = Field(
        default="notifications.returns.example", description="Right-hand side of the stable Message-ID of every email."
    )

    send_retry_delays_ms: list[int] = Field(
        default=[60_000, 300_000, 900_000, 3_600_000, 14_400_000],
        description="Wait before each new attempt after a transient SMTP failure; exhausted -> failed.",
    )
    dispatch_poll_ms: int = Field(
        default=5000,
        description="How often the log is searched for due emails no sender holds (a crashed sender's, after "
        "its lease; another replica's retries); a process claims its own retries and resends by id when due.",
    )
    dispatch_lease_s: float = Field(
        default=15.0,
        gt=0,
        description="Claim on an email being sent; renewed every third of it while the sender lives, so a "
        "crashed sender's emails go again within this time.",
    )
    dispatch_workers: int = Field(
        default=16, description="Emails being sent at the same time (16 measured best in bench/RESULTS.md)."
    )

    # ---- webhooks (services/notifications/webhooks, SPEC §14) ------------------------------------
    webhooks_allow_http: bool = Field(
        default=False, description="Accept `http://` endpoint URLs (development only; production wants https)."
    )
    webhooks_allow_private: bool = Field(
        default=False,
        description="Accept endpoint hosts resolving to addresses that are not public (private, shared, "
        "loopback, link-local, reserved; development and tests only).",
    )
    webhooks_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Time one delivery attempt may take in all (connect, send, the answer's status and headers).",
    )
    webhooks_retry_delays_s: list[float] = Field(
        default=[5, 300, 1800, 7200, 18000, 36000],
        description="Wait before each new attempt after a failed one; the last repeats until the retry window ends.",
    )
    webhooks_retry_window_s: float = Field(
        default=72 * 3600,
        ge=0,
        description="A delivery is retried until this long after its first attempt, then failed.",
    )
    webhooks_secret_overlap_s: float = Field(
        default=24 * 3600, ge=0, description="How long a rotated-out secret still signs deliveries (both signatures)."
    )
    webhooks_disable_after_failures: int = Field(
        default=5, ge=1, description="An endpoint is disabled after this many deliveries in a row failed for good."
    )
    webhooks_disable_after_s: float = Field(
        default=24 * 3600, gt=0, description="... or after every attempt to it failed for this long."
    )
    webhooks_reconcile_s: float = Field(
        default=60.0, gt=0, description="How often the webhooks queue's bindings are matched to the registered types."
    )
    webhooks_poll_ms: int = Field(
        default=5000, ge=1, description="How often due deliveries no worker holds are looked for."
    )
    webhooks_lease_s: float = Field(
        default=60.0, gt=0, description="Claim on a delivery being sent (longer than the timeout: no heartbeat needed)."
    )
    webhooks_workers: int = Field(default=8, ge=1, description="Deliveries being sent at the same time.")
