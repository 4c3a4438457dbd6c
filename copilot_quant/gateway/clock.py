"""The gateway's market clock: the replay, stepped by hand or run at a chosen speed, or the wall clock.

Two modes. **Replay** (tests, research, demos): :meth:`SimClock.step` may be called from any thread
(typically a test); it runs the steps on the loop and returns once every tick of those bars has been
handed to the sessions and to the broker, so a test can step and then wait for ib_async to see the
result; :meth:`SimClock.run` advances ``speed`` bars per second. **Wall clock** (the paper market a bare
``copilot-quant gateway`` runs): a :class:`~copilot_quant.gateway.wallclock.WallClockMarket` trades in
real time from the moment the gateway listens; it cannot be stepped, sped up or paused.

All market work happens on the gateway's event-loop thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

import pandas as pd

from copilot_quant.errors import GatewayError
from copilot_quant.gateway.market import Bar, MarketReplay
from copilot_quant.gateway.wallclock import WallClockMarket

__all__ = ["SimClock"]

T = TypeVar("T")

logger = logging.getLogger(__name__)


class SimClock:
    """Controls a :class:`MarketReplay`: ``step(n)``, ``run(speed)``, ``pause()``, ``now``.

    ``speed`` is in bars per second; ``None`` or 0 means paused (manual stepping only). With ``wall``
    the market follows the wall clock instead, and the replay controls raise :class:`GatewayError`.
    """

    def __init__(
        self,
        market: MarketReplay,
        advance: Callable[[], list[Bar]] | None = None,
        *,
        wall: WallClockMarket | None = None,
    ) -> None:
        self.market = market
        self.wall = wall
        self._advance = advance or market.advance
        self.loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._speed: float | None = None

    @property
    def mode(self) -> str:
        """``"wall"`` (real time) or ``"replay"``."""
        return "replay" if self.wall is None else "wall"

    @property
    def now(self) -> pd.Timestamp:
        """Market time (UTC): the end of the last delivered bar in a replay; on the wall clock, the last
        instant the market has traded (what ``reqCurrentTime`` answers)."""
        return self.market.now if self.wall is None else self.wall.now

    @property
    def speed(self) -> float | None:
        return self._speed

    @property
    def running(self) -> bool:
        if self.wall is not None:
            return self.wall.running
        return self._task is not None and not self._task.done()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the gateway's loop (called by the server); restarts a configured speed or the wall clock."""
        self.loop = loop
        if self.wall is not None:
            wall = self.wall
            self._call(lambda: wall.start(loop))
        elif self._speed:
            self._call(self._start_task)

    def detach(self) -> None:
        """The loop is stopping: cancel the running task (the configured speed is kept for a restart)."""
        if self.wall is not None:
            self.wall.stop()
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.loop = None

    def _refuse_in_wall_mode(self, what: str) -> None:
        if self.wall is not None:
            raise GatewayError(
                f"the market follows the wall clock and cannot be {what}; start the gateway in replay mode "
                "(clock='replay', or `copilot-quant gateway --clock replay`) to step it or set its speed."
            )

    def step(self, n: int = 1, *, then_idle: float = 0.0) -> list[Bar]:
        """Advance ``n`` bars synchronously; returns the bars delivered (all symbols, in order).

        ``then_idle``: seconds the clock then moves on with nothing trading (never up to the next bar's
        end), as time passes after a close at IB: a client that waits for IB's clock to pass a bar's close
        by some margin (the live engine does, for a pair's quote-only bars) sees it pass, in the same
        loop turn as the step, so no request can slip in between.
        """
        self._refuse_in_wall_mode("stepped")
        if n < 0:
            raise GatewayError(f"step(n) needs n >= 0, got {n}.")
        if then_idle < 0:
            raise GatewayError(f"then_idle is seconds >= 0, got {then_idle}.")

        def work() -> list[Bar]:
            out: list[Bar] = []
            for _ in range(n):
                out += self._advance()
            if then_idle:
                self.market.pass_time(pd.Timedelta(seconds=then_idle))
            return out

        return self._call(work)

    def run(self, speed: float | None) -> None:
        """Advance automatically at ``speed`` bars per second (``None``/0 pauses)."""
        self._refuse_in_wall_mode("sped up or paused")
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
