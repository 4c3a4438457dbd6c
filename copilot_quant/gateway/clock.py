"""The gateway's market clock: step the simulated market by hand, or let it run at a chosen speed.

All market work happens on the gateway's event-loop thread. :meth:`SimClock.step` may be called from any
thread (typically a test): it runs the steps on the loop and returns once every tick of those bars has been
handed to the sessions and to the broker, so a test can step and then wait for ib_async to see the result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

import pandas as pd

from copilot_quant.errors import GatewayError
from copilot_quant.gateway.market import Bar, MarketReplay

__all__ = ["SimClock"]

T = TypeVar("T")

logger = logging.getLogger(__name__)


class SimClock:
    """Controls a :class:`MarketReplay`: ``step(n)``, ``run(speed)``, ``pause()``, ``now``.

    ``speed`` is in bars per second; ``None`` or 0 means paused (manual stepping only).
    """

    def __init__(self, market: MarketReplay, advance: Callable[[], list[Bar]] | None = None) -> None:
        self.market = market
        self._advance = advance or market.advance
        self.loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._speed: float | None = None

    @property
    def now(self) -> pd.Timestamp:
        """Simulated time: the end of the last delivered bar (UTC)."""
        return self.market.now

    @property
    def speed(self) -> float | None:
        return self._speed

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the gateway's loop (called by the server); restarts a configured speed."""
        self.loop = loop
        if self._speed:
            self._call(self._start_task)

    def detach(self) -> None:
        """The loop is stopping: cancel the running task (the configured speed is kept for a restart)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.loop = None

    def step(self, n: int = 1) -> list[Bar]:
        """Advance ``n`` bars synchronously; returns the bars delivered (all symbols, in order)."""
        if n < 0:
            raise GatewayError(f"step(n) needs n >= 0, got {n}.")

        def work() -> list[Bar]:
            out: list[Bar] = []
            for _ in range(n):
                out += self._advance()
            return out

        return self._call(work)

    def run(self, speed: float | None) -> None:
        """Advance automatically at ``speed`` bars per second (``None``/0 pauses)."""
        if speed is not None and speed < 0:
            raise GatewayError(f"speed must be >= 0 bars per second, got {speed}.")
        self._speed = speed or None
        self._call(self._start_task if self._speed else self._stop_task)

    def pause(self) -> None:
        self.run(None)

    # -- loop-thread internals --------------------------------------------------------------------------
    def _start_task(self) -> None:
        self._stop_task()
        if self.loop is not None:
            self._task = self.loop.create_task(self._ticker())

    def _stop_task(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _ticker(self) -> None:
        while self._speed:
            await asyncio.sleep(1.0 / self._speed)
            try:
                self._advance()
            except Exception:  # a data problem must not kill the clock silently: log and stop
                logger.exception("market clock stopped: advancing the market failed")
                self._speed = None
                return

    def _call(self, fn: Callable[[], T]) -> T:
        loop = self.loop
        if loop is None or not loop.is_running():
            return fn()
        if _on_loop_thread(loop):
            return fn()

        async def wrapper() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), loop).result(timeout=60)


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
