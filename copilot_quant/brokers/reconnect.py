"""Connection health as an explicit state machine, plus the capped, jittered reconnect backoff.

States and the only allowed moves::

    DISCONNECTED ──connect()──▶ CONNECTING ──ok──▶ CONNECTED ◀──────────────┐
         ▲                          │                 │  ▲                  │
         │                       failed            1100/2103/2105/stale     │ reconnected
         │                          ▼                 ▼  │ 1101/1102/2104/2106
         └──────────────────── DISCONNECTED        DEGRADED                  │
                                                      │ socket dropped      │
                                  (socket dropped) ──▶ RECONNECTING ─────────┘
                                                      │ gave up / disconnect()
                                                      ▼
                                                   STOPPED

* ``DEGRADED``: the socket is up but IB says data is not flowing (1100 lost connectivity to IB, 2110, a farm
  is broken, or the staleness watchdog saw no ticks). Orders may still work; the feed waits for recovery.
  Each link is tracked on its own (:class:`~copilot_quant.brokers.farms.LinkHealth`): the state returns to
  ``CONNECTED`` only when *nothing* is broken any more — 1100 then a farm OK stays degraded.
* ``RECONNECTING``: the socket dropped unexpectedly; a background task retries with :class:`Backoff`.
* ``STOPPED``: a deliberate ``disconnect()`` (never followed by a reconnect), or reconnection gave up (only
  with an explicit ``Backoff(max_attempts=N)``: by default the connection never gives up).

Every change is emitted on :attr:`ConnectionStateMachine.state_changed` as ``(old, new, reason)`` and logged.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from enum import StrEnum

from eventkit import Event

from copilot_quant.brokers.farms import LinkHealth
from copilot_quant.errors import ConfigError

__all__ = [
    "CONNECTIVITY_LOST",
    "CONNECTIVITY_RESTORED_DATA_LOST",
    "CONNECTIVITY_RESTORED_DATA_MAINTAINED",
    "FARM_BROKEN",
    "FARM_OK",
    "Backoff",
    "ConnectionState",
    "ConnectionStateMachine",
    "StateChange",
]

log = logging.getLogger(__name__)

#: IB system codes that drive the state machine (tws-protocol-notes §10).
CONNECTIVITY_LOST = 1100  # connectivity between IB and TWS lost
CONNECTIVITY_RESTORED_DATA_LOST = 1101  # restored, market data subscriptions lost: resubscribe
CONNECTIVITY_RESTORED_DATA_MAINTAINED = 1102  # restored, subscriptions kept
FARM_BROKEN = frozenset({2103, 2105})  # market data / HMDS farm connection is broken
FARM_OK = frozenset({2104, 2106, 2158})  # farm connection is OK
FARM_INACTIVE = frozenset({2107, 2108})  # farm inactive but available on demand: not a problem
# (the full per-farm rules are in copilot_quant.brokers.farms; these sets stay for importers)


class ConnectionState(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DEGRADED = "degraded"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"

    @property
    def has_socket(self) -> bool:
        """Whether an IB socket is up (data may still be degraded)."""
        return self in (ConnectionState.CONNECTED, ConnectionState.DEGRADED)


_S = ConnectionState
_ALLOWED: dict[ConnectionState, frozenset[ConnectionState]] = {
    _S.DISCONNECTED: frozenset({_S.CONNECTING, _S.STOPPED}),
    _S.CONNECTING: frozenset({_S.CONNECTED, _S.DISCONNECTED, _S.STOPPED}),
    _S.CONNECTED: frozenset({_S.DEGRADED, _S.RECONNECTING, _S.STOPPED}),
    _S.DEGRADED: frozenset({_S.CONNECTED, _S.RECONNECTING, _S.STOPPED}),
    _S.RECONNECTING: frozenset({_S.CONNECTED, _S.STOPPED}),
    _S.STOPPED: frozenset({_S.CONNECTING}),
}


@dataclass(frozen=True, slots=True)
class StateChange:
    old: ConnectionState
    new: ConnectionState
    reason: str


class ConnectionStateMachine:
    """Holds the current :class:`ConnectionState`; refuses illegal moves; emits and logs each change.

    Thread-safe: transitions may come from the IB loop thread (socket events, IB codes) and from user
    threads (``connect``/``disconnect``). ``state_changed`` handlers run on the thread that caused the
    change and must not block.
    """

    __slots__ = ("_lock", "_state", "health", "history", "state_changed")

    def __init__(self) -> None:
        self._state = ConnectionState.DISCONNECTED
        self._lock = threading.Lock()
        self.state_changed = Event("state_changed")
        #: TWS's links to IB, its server and each data farm, as its codes said (reset per session).
        self.health = LinkHealth()
        #: Every change so far (bounded), oldest first; handy for status displays and tests.
        self.history: list[StateChange] = []

    @property
    def state(self) -> ConnectionState:
        return self._state

    def can_move(self, new: ConnectionState) -> bool:
        return new in _ALLOWED[self._state]

    def move(self, new: ConnectionState, reason: str) -> bool:
        """Go to ``new`` if allowed from the current state; returns whether the state changed."""
        with self._lock:
            old = self._state
            if new == old or new not in _ALLOWED[old]:
                if new != old:
                    log.debug("ignored connection move %s -> %s (%s)", old, new, reason)
                return False
            self._state = new
            change = StateChange(old, new, reason)
            self.history.append(change)
            del self.history[:-200]
        log.info("IB connection %s -> %s: %s", old.value, new.value, reason)
        self.state_changed.emit(old, new, reason)
        return True

    def on_ib_code(self, code: int, message: str = "") -> bool:
        """Feed an IB system message; returns whether it changed the state."""
        if not self.health.on_code(code, message):
            return False
        reason = f"IB {code}: {message}".strip()
        if not self.health.healthy:
            if self._state is ConnectionState.DEGRADED:
                return False
            return self.move(ConnectionState.DEGRADED, f"{reason} ({'; '.join(self.health.problems())})")
        if self._state is ConnectionState.DEGRADED:
            return self.move(ConnectionState.CONNECTED, reason)
        return False


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter: ``min(maximum, initial × factor**attempt) × (1 ± jitter)``.

    Jitter spreads the reconnects of many clients after a gateway restart (no thundering herd).
    ``max_attempts=None`` retries forever.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    #: ``None``: never give up (the default: IB's weekly re-authentication and weekend maintenance outlast
    #: any fixed count, and a client that gives up leaves GTC orders unattended).
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ConfigError(
                f"invalid backoff {self}: need 0 < initial <= maximum, factor >= 1, 0 <= jitter < 1"
            )
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1 or None, got {self.max_attempts}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt number ``attempt`` (0-based)."""
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, min(self.maximum, base * (1.0 + spread)))

    def gives_up_after(self, attempt: int) -> bool:
        return self.max_attempts is not None and attempt >= self.max_attempts
