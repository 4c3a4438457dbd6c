"""Alert configuration from ``COPILOT_QUANT_ALERT_*`` environment variables or ``.env`` (as ``IB_*`` is read).

==============================================  ============================================================
``COPILOT_QUANT_ALERT_WEBHOOK_URL``             Slack/Discord incoming webhook (JSON POST)
``COPILOT_QUANT_ALERT_SMTP_HOST`` / ``_PORT``     SMTP server (port 25 by default)
``COPILOT_QUANT_ALERT_SMTP_USER`` / ``_PASSWORD``  login, if the server wants one
``COPILOT_QUANT_ALERT_SMTP_STARTTLS``            ``true`` to upgrade the connection to TLS
``COPILOT_QUANT_ALERT_EMAIL_FROM`` / ``_TO``      sender; recipients, comma-separated
``COPILOT_QUANT_ALERT_KINDS``                    which alerts (comma-separated; default all)
``COPILOT_QUANT_ALERT_DISCONNECT_AFTER_S``       alert when disconnected longer than this (60)
``COPILOT_QUANT_ALERT_NO_BAR_AFTER_MIN``         alert when no bar for this long in market hours (10)
``COPILOT_QUANT_ALERT_DEDUPE_S``                 the same alert at most once per this many seconds (300)
``COPILOT_QUANT_ALERT_MAX_PER_MINUTE``           at most this many alerts a minute (20)
``COPILOT_QUANT_ALERT_RETRIES``                  delivery attempts after the first (3), backoff doubling from 1 s
==============================================  ============================================================
"""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from copilot_quant.alerts.channels import AlertChannel, EmailChannel, WebhookChannel
from copilot_quant.alerts.model import AlertKind
from copilot_quant.errors import ConfigError

__all__ = ["AlertSettings"]


class AlertSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COPILOT_QUANT_ALERT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    email_from: str | None = None
    email_to: str = ""
    kinds: str = ",".join(k.value for k in AlertKind)
    disconnect_after_s: float = Field(default=60.0, gt=0)
    no_bar_after_min: float = Field(default=10.0, gt=0)
    dedupe_s: float = Field(default=300.0, ge=0)
    max_per_minute: int = Field(default=20, ge=1)
    retries: int = Field(default=3, ge=0)
    retry_backoff_s: float = Field(default=1.0, ge=0)

    @classmethod
    def load(cls, **overrides: object) -> AlertSettings:
        """The settings, checked whole (kinds, channels), or a ConfigError naming the bad variable."""
        try:
            settings = cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            first = exc.errors()[0]
            name = "COPILOT_QUANT_ALERT_" + str(first["loc"][0]).upper()
            raise ConfigError(f"{name}: {first['msg']}") from None
        settings.wanted()
        settings.channels()
        return settings

    def wanted(self) -> frozenset[AlertKind]:
        names = [k.strip().lower() for k in self.kinds.split(",") if k.strip()]
        unknown = [n for n in names if n not in AlertKind.__members__.values()]
        if unknown:
            raise ConfigError(
                f"COPILOT_QUANT_ALERT_KINDS: unknown {', '.join(unknown)}; use {', '.join(AlertKind)}"
            )
        return frozenset(AlertKind(n) for n in names)

    def channels(self) -> list[AlertChannel]:
        """The configured channels (none: alerts are only logged)."""
        found: list[AlertChannel] = []
        if self.webhook_url:
            found.append(WebhookChannel(self.webhook_url))
        if self.smtp_host:
            recipients = [a.strip() for a in self.email_to.split(",") if a.strip()]
            found.append(
                EmailChannel(
                    self.smtp_host,
                    self.smtp_port,
                    self.email_from or "",
                    recipients,
                    user=self.smtp_user,
                    password=self.smtp_password,
                    starttls=self.smtp_starttls,
                )
            )
        return found
