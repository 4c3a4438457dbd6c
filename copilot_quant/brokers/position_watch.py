"""The positions the broker adapter expects IB to show after the fills it delivered, and its own fill book.

IB sends the position update just after the execution. The engine waits for it (:meth:`PositionWatch.wait`
from its thread, :meth:`PositionWatch.settled` on the loop) before the next ``on_data``, so that the
strategy's account view includes the fills it was just told about. The local book (``enable_position_tracking``)
is served by ``get_positions`` while the connection is down.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from copilot_quant.backtest.orders import Fill, Position
from copilot_quant.brokers.exec_corrections import ExecutionCorrection
from copilot_quant.brokers.ib_account import IbAccount
from copilot_quant.errors import BrokerError

__all__ = ["PositionWatch"]

log = logging.getLogger(__name__)


class PositionWatch:
    """Expected IB positions per symbol (from the fills emitted so far) and a local book of the fills."""

    def __init__(self, account: IbAccount, *, track_local: bool) -> None:
        self._account = account
        self.track_local = track_local
        #: IB position each symbol should show once IB has reported the fills emitted so far.
        self.expected: dict[str, float] = {}
        self._local: dict[str, Position] = {}
        self._lock = threading.Lock()

    def note_fill(self, fill: Fill, *, on_loop: bool) -> None:
        """Book ``fill`` into the expected and local positions (loop thread, as IB reports it).

        ``on_loop``: the handlers are installed, so ib_async's position cache is consistent here."""
        if on_loop:
            try:
                base = self.expected.get(fill.symbol)
                held = self._account.read_position(fill.symbol) if base is None else base
                self.expected[fill.symbol] = held + fill.signed_quantity
            except (BrokerError, ConnectionError):
                pass
        if self.track_local:
            with self._lock:
                pos = self._local.get(fill.symbol)
                if pos is None:
                    pos = self._local[fill.symbol] = Position(fill.symbol)
                pos.update_from_fill(fill)

    def correct(self, correction: ExecutionCorrection) -> None:
        """IB corrected a delivered execution: book the signed difference."""
        delta = correction.signed_quantity_delta
        symbol = correction.symbol
        if symbol in self.expected:
            self.expected[symbol] += delta
        if self.track_local and delta:
            with self._lock:
                self._local.setdefault(symbol, Position(symbol)).apply(delta, correction.new_price)

    def local_positions(self) -> dict[str, Position]:
        """The local fill-based book (non-flat positions), as snapshots."""
        with self._lock:
            return {s: p.snapshot() for s, p in self._local.items() if not p.is_flat}

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s (not on the loop) until IB's positions include every fill emitted so far."""
        deadline = time.monotonic() + timeout
        ok = True
        for symbol, expected in list(self.expected.items()):
            while abs(self._account.position(symbol) - expected) > 1e-9:
                if time.monotonic() >= deadline:
                    ok = False
                    break
                time.sleep(0.005)
            if self.expected.get(symbol) == expected:
                self.expected.pop(symbol, None)
        return ok

    async def settled(self, seconds: float) -> bool:
        """:meth:`wait` on the loop thread, where IB's position updates arrive."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        ok = True
        for symbol, expected in list(self.expected.items()):
            while abs(self._account.read_position(symbol) - expected) > 1e-9:
                if loop.time() >= deadline:
                    ok = False
                    break
                await asyncio.sleep(0.002)
            if self.expected.get(symbol) == expected:
                self.expected.pop(symbol, None)
        return ok

    def settled_now(self) -> bool:
        """Whether IB's positions include every fill emitted so far, as of now (loop thread, no wait). A symbol
        whose position is not there yet stays expected: the engine's worker then waits for it."""
        expected = self.expected
        if not expected:
            return True
        read = self._account.read_position
        for symbol, quantity in list(expected.items()):
            if abs(read(symbol) - quantity) > 1e-9:
                return False
            if expected.get(symbol) == quantity:
                expected.pop(symbol, None)
        return True

    def wait_for(self, symbol: str, expected: float, timeout: float) -> None:
        """IB pushes the new position just after the execution; wait briefly so get_positions() shows it."""
        deadline = time.monotonic() + timeout
        while abs(self._account.position(symbol) - expected) > 1e-9:
            if time.monotonic() >= deadline:
                log.info("IB has not reported the new %s position yet", symbol)
                return
            time.sleep(0.01)
