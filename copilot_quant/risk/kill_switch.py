"""The kill switch: one call halts all new orders until a human releases it.

``engage(reason, cancel_all=True, flatten=False)`` records *what* must happen; the engine, subscribed to
:attr:`KillSwitch.engaged`, does it (cancels every open order, optionally sends flattening orders —
those bypass the risk check, which fails for every other order while the switch is engaged). Engaging
from any thread, a signal handler's deferred call or the CLI is safe; handlers run on the engaging thread
and must only hand the work to the engine's loop (e.g. ``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from eventkit import Event

from copilot_quant.errors import ConfigError

__all__ = ["KillSwitch", "KillSwitchEngagement"]

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class KillSwitchEngagement:
    """Why and when the switch was engaged, and what the engine must do about open orders/positions."""

    reason: str
    time: datetime
    cancel_all: bool = True
    flatten: bool = False


class KillSwitch:
    """Thread-safe halt flag with events: ``engaged(engagement)`` and ``released(engagement)``.

    Engaging again while engaged keeps the first reason and time but widens what must be done (a later
    ``flatten=True`` escalates); the ``engaged`` event fires again so that the engine acts on it.
    """

    __slots__ = ("_clock", "_engagement", "_lock", "engaged", "released")

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or _utcnow
        self._lock = threading.Lock()
        self._engagement: KillSwitchEngagement | None = None
        self.engaged = Event("engaged")
        self.released = Event("released")

    @property
    def is_engaged(self) -> bool:
        return self._engagement is not None

    @property
    def engagement(self) -> KillSwitchEngagement | None:
        return self._engagement

    @property
    def reason(self) -> str:
        """The engagement reason, or '' when not engaged."""
        engagement = self._engagement
        return "" if engagement is None else engagement.reason

    def engage(self, reason: str, cancel_all: bool = True, flatten: bool = False) -> KillSwitchEngagement:
        """Halt new orders; the engine cancels open orders (``cancel_all``) and flattens (``flatten``)."""
        text = str(reason or "").strip()
        if not text:
            raise ConfigError("engage() needs a reason, e.g. engage('manual stop from the CLI')")
        with self._lock:
            current = self._engagement
            if current is None:
                engagement = KillSwitchEngagement(text, self._clock(), bool(cancel_all), bool(flatten))
            else:
                engagement = KillSwitchEngagement(
                    current.reason,
                    current.time,
                    current.cancel_all or bool(cancel_all),
                    current.flatten or bool(flatten),
                )
            self._engagement = engagement
        log.error(
            "KILL SWITCH engaged: %s (cancel all: %s, flatten: %s)",
            engagement.reason,
            engagement.cancel_all,
            engagement.flatten,
        )
        self.engaged.emit(engagement)
        return engagement

    def release(self) -> bool:
        """Allow trading again; returns False if the switch was not engaged."""
        with self._lock:
            engagement, self._engagement = self._engagement, None
        if engagement is None:
            return False
        log.warning("kill switch released (was engaged: %s)", engagement.reason)
        self.released.emit(engagement)
        return True
