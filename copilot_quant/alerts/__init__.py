"""Alerts: fills, rejections, halts and the kill switch, long disconnects, reconciliation differences, strategy
errors and missing bars — to a webhook (Slack/Discord JSON) and by e-mail (SMTP).

::

    from copilot_quant.alerts import AlertSettings, EngineAlerts

    alerts = EngineAlerts.from_settings(engine, AlertSettings())   # COPILOT_QUANT_ALERT_* / .env
    alerts.start()      # after engine.start(); alerts.stop() before engine.stop()

Delivery runs on its own thread with retries: a slow or failing webhook or mail server never blocks trading.
Alerts are de-duplicated (the same alert at most once per ``dedupe_s``) and rate-limited (``max_per_minute``).
"""

from copilot_quant.alerts.channels import AlertChannel, EmailChannel, WebhookChannel
from copilot_quant.alerts.dispatcher import AlertDispatcher
from copilot_quant.alerts.model import Alert, AlertKind
from copilot_quant.alerts.rules import EngineAlerts
from copilot_quant.alerts.settings import AlertSettings
from copilot_quant.alerts.throttle import Throttle

__all__ = [
    "Alert",
    "AlertChannel",
    "AlertDispatcher",
    "AlertKind",
    "AlertSettings",
    "EmailChannel",
    "EngineAlerts",
    "Throttle",
    "WebhookChannel",
]
