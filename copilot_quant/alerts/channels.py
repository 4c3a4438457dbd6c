"""Where alerts go: a webhook (HTTP POST of JSON) and e-mail (SMTP). Each ``send`` raises on failure; the
dispatcher retries."""

from __future__ import annotations

import json
import smtplib
import urllib.request
from email.message import EmailMessage
from typing import Protocol

from copilot_quant.alerts.model import Alert
from copilot_quant.errors import ConfigError

__all__ = ["AlertChannel", "EmailChannel", "WebhookChannel"]


class AlertChannel(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


class WebhookChannel:
    """POST :meth:`Alert.webhook_json` to ``url`` (Slack and Discord incoming webhooks accept it)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"alert webhook URL {url!r} must start with https:// (or http://)")
        self.url = url
        self.timeout = timeout
        self.name = "webhook"

    def send(self, alert: Alert) -> None:
        data = json.dumps(alert.webhook_json()).encode()
        request = urllib.request.Request(
            self.url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if response.status >= 300:
                raise OSError(f"webhook answered HTTP {response.status}")


class EmailChannel:
    """Send the alert as a plain-text e-mail through an SMTP server (STARTTLS and login when configured)."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: list[str],
        *,
        user: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        if not recipients:
            raise ConfigError("alert e-mail needs at least one recipient (COPILOT_QUANT_ALERT_EMAIL_TO)")
        if not sender:
            raise ConfigError("alert e-mail needs a sender (COPILOT_QUANT_ALERT_EMAIL_FROM)")
        self.host, self.port = host, int(port)
        self.sender, self.recipients = sender, list(recipients)
        self.user, self.password, self.starttls = user, password, starttls
        self.timeout = timeout
        self.name = "email"

    def send(self, alert: Alert) -> None:
        message = EmailMessage()
        message["Subject"] = alert.subject
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(alert.message())
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)
