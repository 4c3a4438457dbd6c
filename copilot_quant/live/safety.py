"""The safety supervisor: kill switch, kill-switch files, liveness and competing sessions as one ``halted``.

Trading is halted while any of these holds: the kill switch is engaged (by :meth:`Safety.kill`, a signal, a
kill file, or a failed journal write), the liveness guard finds the engine blind (disconnected or no data
too long), TWS reports broken a link the engine needs (its link to IB, its server, the US market-data or
historical-data farm: :mod:`~copilot_quant.live.link_policy`; a farm it does not need never stops it), or
another session took the market data (IB 10197). :attr:`Safety.halted` says why, in one
sentence, or is None while orders may go out. Each change is reported once (alert/halt/resume events).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.reconnect import ConnectionState
from copilot_quant.data.calendars import market_open_span
from copilot_quant.errors import BrokerError, JournalError
from copilot_quant.journal import EventKind, TradeJournal
from copilot_quant.live.bar_clock import BarClock
from copilot_quant.live.events import ErrorLog, EventLog
from copilot_quant.live.link_policy import blocking_problems
from copilot_quant.model.orders import Order, OrderSide, OrderType
from copilot_quant.risk import LivenessGuard, RiskDecision, RiskManager, RiskRule
from copilot_quant.risk.kill_file import read_kill_file

__all__ = ["COMPETING_SESSION", "Safety", "split_by_owner"]

log = logging.getLogger(__name__)

#: IB's "no market data during a competing live session" message.
COMPETING_SESSION = 10197


def _file_stamp(path: Path | None) -> tuple[int, int] | None:
    """``(mtime_ns, size)`` of ``path``, or None if there is none: tells a rewritten kill file from a seen one."""
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def split_by_owner(
    held: float, symbol: str, claims: Mapping[str, Mapping[str, float]]
) -> Iterator[tuple[str, float]]:
    """Split the account's position ``held`` in ``symbol`` among the strategies whose books hold it (same
    direction, at most what is left), the rest tagged ``kill_switch``: each strategy's book sees its own
    position closed by its own order."""
    left = held
    for owner, book in claims.items():
        claim = book.get(symbol, 0.0)
        if abs(left) < 1e-12 or claim == 0 or (claim > 0) != (left > 0):
            continue
        take = claim if abs(claim) <= abs(left) else left
        left -= take
        yield owner, take
    if abs(left) >= 1e-12:
        yield "kill_switch", left


class Safety:
    """Watches the rails and carries out the kill switch (see the module docstring)."""

    def __init__(
        self,
        *,
        connection: IBConnection,
        broker: LiveBrokerAdapter,
        risk: RiskManager,
        liveness: LivenessGuard,
        clock: BarClock,
        events: EventLog,
        errors: ErrorLog,
        journal: Callable[[], TradeJournal | None],
        wake: threading.Event,
        running: Callable[[], bool],
        kill_switch_file: Path | None,
        claims: Callable[[], Mapping[str, Mapping[str, float]]] = dict,
    ) -> None:
        self._conn = connection
        self._broker = broker
        self.risk = risk
        self.kill_switch = risk.kill_switch
        self.liveness = liveness
        self._clock = clock
        self._events = events
        self._errors = errors
        self._journal = journal
        self._wake = wake
        self._running = running
        self._claims = claims
        self.kill_switch_file = kill_switch_file
        self._also_watched: list[Path] = []  # kill-switch files besides kill_switch_file (watch)
        self._kill_file_seen: dict[Path, tuple[int, int]] = {}  # the version of each kill file acted on
        #: Set when a kill must be carried out on the worker (from the loop thread, or while disconnected).
        self.kill_pending = threading.Event()
        self._halt_reason: str | None = None
        self._competing_since: float | None = None
        self._expect_data: tuple[int, int, bool] | None = None  # a span of the clock, market open in it

    # ------------------------------------------------------------------ the one halted state
    @property
    def halted(self) -> str | None:
        """Why trading is halted (kill switch, competing session or liveness), or None."""
        if self.kill_switch.is_engaged:
            return f"kill switch engaged: {self.kill_switch.reason}"
        if self._competing_since is not None:
            return "competing live session (IB 10197): no market data"
        return self._halt_reason

    def refusal(self, decision: RiskDecision) -> str | None:
        """The reason an order is refused because trading is halted, or None when the decision is not
        about a halt."""
        if decision.rule in (RiskRule.KILL_SWITCH, RiskRule.LIVENESS):
            return f"trading halted: {decision.reason}"
        if decision.ok and self._competing_since is not None:
            return f"trading halted: {self.halted}"
        return None

    def expect_data(self) -> bool:
        """Whether the market is open by the broker's clock as last known (the session calendar is read
        once per open or close: this is asked once per order and rail check of a bar, on its way to IB)."""
        ns = self._clock.server_ns
        if ns is None:
            return False
        known = self._expect_data
        if known is None or not known[0] <= ns < known[1]:
            known = self._expect_data = market_open_span(ns)
        return known[2]

    # ------------------------------------------------------------------ kill switch
    def kill(self, reason: str = "kill switch", flatten: bool = False) -> None:
        """Engage the kill switch: no new orders, cancel every open order, optionally flatten positions."""
        self.kill_switch.engage(reason, cancel_all=True, flatten=flatten)
        self._events.emit(EventKind.KILL_SWITCH, f"{reason} (flatten={flatten})", level=logging.ERROR)
        if self._conn.runtime.on_loop_thread():
            self.kill_pending.set()  # blocking on the loop from its own thread would deadlock
            self._wake.set()
            return
        self.carry_out_kill()

    def carry_out_kill(self) -> None:
        engagement = self.kill_switch.engagement
        if engagement is None:
            return
        if not self._conn.is_connected():
            self.kill_pending.set()  # cancel (and flatten) as soon as the connection is back
            return
        # every order IB may still hold: also one an IB error code alone marked rejected, or Inactive
        self._broker.cancel_all_orders(f"kill switch: {engagement.reason}")
        if engagement.flatten:
            self._flatten()

    def _flatten(self) -> None:
        try:
            positions = self._broker.get_positions()
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            self._errors.record(f"kill switch: cannot read positions to flatten: {exc}", "kill_switch")
            return
        now = datetime.now(UTC)
        claims = self._claims()
        for symbol, position in positions.items():
            if position.is_flat:
                continue
            for owner, quantity in split_by_owner(position.quantity, symbol, claims):
                self._send_flatten(symbol, quantity, owner, now)

    def _send_flatten(self, symbol: str, quantity: float, owner: str, now: datetime) -> None:
        """Send one flattening market order of ``quantity`` (signed: what is held), tagged with ``owner``."""
        order = Order(
            symbol=symbol,
            quantity=abs(quantity),
            order_type=OrderType.MARKET,
            side=OrderSide.SELL if quantity > 0 else OrderSide.BUY,
            allow_fractional=not float(quantity).is_integer(),
            tag="kill_switch_flatten",
        )
        ref = ""
        journal = self._journal()
        if journal is not None:
            try:
                ref = journal.record_intent(order, owner)
            except JournalError as exc:
                log.error("flattening %s without a journal entry: %s", symbol, exc)
        # Flattening bypasses the risk check on purpose: it is the way out, not a new risk.
        self._broker.execute_order(order, float("nan"), now, order_ref=ref, wait=0.0)

    def on_journal_failure(self, error: JournalError) -> None:
        """A journal write failed: halt trading (kill switch), say so loudly. Any thread."""
        self._errors.record(f"journal write failed; trading halted: {error}", "journal")
        if not self.kill_switch.is_engaged:
            self.kill(f"journal write failed: {error}")

    # ------------------------------------------------------------------ kill files
    def watch(self, path: str | Path) -> None:
        target = Path(path)
        if target != self.kill_switch_file and target not in self._also_watched:
            self._also_watched.append(target)

    def kill_files(self) -> list[Path]:
        own = [self.kill_switch_file] if self.kill_switch_file is not None else []
        return own + self._also_watched

    def check_kill_files(self) -> None:
        """Engage the kill switch when a kill-switch file appears, and escalate to flattening when a later
        write of one asks for that (``copilot-quant kill --flatten`` after a plain kill)."""
        for path in self.kill_files():
            stamp = _file_stamp(path)
            if stamp is None or stamp == self._kill_file_seen.get(path):
                continue
            self._kill_file_seen[path] = stamp
            found = read_kill_file(path)
            if found is None:
                continue  # removed between the stat and the read
            engagement = self.kill_switch.engagement
            if engagement is not None and (engagement.flatten or not found.flatten):
                continue  # already halted, and the file asks for nothing more
            said = f": {found.text}" if found.text else ""
            self.kill(f"kill switch file {path}{said}", flatten=found.flatten)

    # ------------------------------------------------------------------ liveness and competing sessions
    def _blind_reason(self) -> str | None:
        """The liveness guard's verdict now, else a needed link TWS reports broken (None: the engine sees
        the market)."""
        guard = self.liveness
        now = datetime.now(UTC)
        if self._conn.state.has_socket:
            guard.on_data(now - timedelta(seconds=self._conn.seconds_since_data))
        return guard.check(now, expect_data=self.expect_data()) or self.link_problem()

    def link_problem(self) -> str | None:
        """Why the connection is too degraded to trade (the broken links the engine needs), or None."""
        if self._conn.state is not ConnectionState.DEGRADED:
            return None
        blocking = blocking_problems(self._conn.machine.health)
        if not blocking:
            return None
        return "connection degraded: " + "; ".join(blocking) + " (trading paused until TWS reports it OK)"

    def may_step(self) -> bool:
        """Whether the worker may deliver bars and route orders: connected, or degraded only by links the
        engine does not need (a forex or foreign farm). Degraded because quotes went stale (no broken
        link): no — the liveness guard watches that."""
        state = self._conn.state
        if state is ConnectionState.CONNECTED:
            return True
        health = self._conn.machine.health
        return state is ConnectionState.DEGRADED and not health.healthy and not blocking_problems(health)

    def check_liveness(self) -> None:
        since = self._competing_since
        if since is not None and time.monotonic() - self._conn.seconds_since_data > since:
            self._competing_since = None  # market data flows again
            self._events.emit(EventKind.RESUME, "market data flows again after the competing session")
        if not self._running():
            return
        reason = self._blind_reason()
        if reason is not None and self._halt_reason is None:
            self._halt_reason = reason
            self._events.emit(EventKind.ALERT, reason, level=logging.ERROR)
            self._events.emit(EventKind.HALT, reason, level=logging.ERROR)
        elif reason is None and self._halt_reason is not None:
            self._events.emit(EventKind.RESUME, f"trading resumed after: {self._halt_reason}")
            self._halt_reason = None
            self._wake.set()  # bars that closed meanwhile are delivered now, not after update_interval

    def need_attention(self) -> bool:
        """Cheap check (no I/O to IB) whether a kill-switch file or the liveness guard has news."""
        for path in self.kill_files():
            stamp = _file_stamp(path)
            if stamp is not None and stamp != self._kill_file_seen.get(path):
                return True
        blind = self._blind_reason() is not None
        return blind != (self._halt_reason is not None)

    def poll(self) -> None:
        """The rails' round: kill files, a pending kill, liveness (worker thread)."""
        self.check_kill_files()
        if self.kill_pending.is_set():
            self.kill_pending.clear()
            self.carry_out_kill()
        self.check_liveness()

    def on_connection_change(self, old: ConnectionState, new: ConnectionState, reason: str) -> None:
        now = datetime.now(UTC)
        if new.has_socket:
            self.liveness.on_connected(now)
        elif self._running():
            self.liveness.on_disconnected(now)
        self._wake.set()  # the worker re-checks the state now, not after update_interval

    def on_ib_message(self, req_id: int, code: int, message: str) -> None:  # IB loop thread
        if code != COMPETING_SESSION or self._competing_since is not None:
            return
        # Another session (TWS, mobile) took the market data: trading on would be trading blind.
        self._competing_since = time.monotonic()
        reason = f"IB {code}: competing live session, no market data ({message}); trading halted"
        self._events.emit(EventKind.ALERT, reason, level=logging.ERROR)
        self._events.emit(EventKind.HALT, reason, level=logging.ERROR)
        self._wake.set()
