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
