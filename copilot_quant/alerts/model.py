"""One alert: what happened, a one-line title, the detail, and the key that tells a repeat from news."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = ["Alert", "AlertKind"]


class AlertKind(StrEnum):
    FILL = "fill"
    REJECTION = "rejection"
    HALT = "halt"
    KILL_SWITCH = "kill_switch"
    DISCONNECT = "disconnect"
    RECONCILE = "reconcile"
    STRATEGY_ERROR = "strategy_error"
    NO_BAR = "no_bar"


@dataclass(frozen=True, slots=True)
class Alert:
    """``key`` identifies "the same alert" for de-duplication (default: kind and text)."""

    kind: AlertKind
    title: str
    text: str
    account: str = ""
    key: str = ""
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def dedupe_key(self) -> str:
        return self.key or f"{self.kind}|{self.text}"

    @property
    def subject(self) -> str:
        where = f" [{self.account}]" if self.account else ""
        return f"copilot-quant{where}: {self.title}"

    def message(self) -> str:
        return f"{self.subject}\n{self.text}\n({self.kind}, {self.time:%Y-%m-%d %H:%M:%S} UTC)"

    def webhook_json(self) -> dict[str, Any]:
        """One body both accept: Slack's incoming webhooks read ``text``, Discord's read ``content``."""
        body = self.message()
        return {"text": body, "content": body[:2000], "kind": str(self.kind), "account": self.account}
