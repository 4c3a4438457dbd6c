"""Python's garbage collector between bars, not inside them: the engine's ``gc_between_bars`` option (default on).

CPython collects young objects whenever allocations outnumber deallocations by 700 — in practice inside a
bar's handler, where the engine allocates (the data window, the order, the journal's rows): ≈ 0.15 ms on one
bar in five and ≈ 0.7–1 ms (a collection of the middle generation) on one in fifty, on the path from the bar
to its order (issue 9 §5). While the engine runs, :class:`BetweenBarsGc`:

* freezes what the process holds when trading starts (:func:`gc.freeze`: modules, calendars, the history just
  loaded), so that no later collection walks it again;
* raises the young generation's threshold to :data:`SAFETY_NET` allocations, so that the interpreter collects
  by itself only after an unusually large burst;
* collects on IB's loop thread *between* its callbacks — so never inside a bar's handler — checking every
  :data:`POLL_S` seconds: once the young generation's count passes the threshold it found (700 by default),
  it collects the generation CPython would have (an older one once its own count passes its threshold: the
  middle one every 10 young collections by default, the oldest every 10 of those; CPython additionally
  waits for the oldest until a quarter of it is new — here the frozen startup objects keep it small).

This is process-wide state (the :mod:`gc` module's), so it is an explicit engine option, refused with
``LiveStrategyEngine(gc_between_bars=False)``, which leaves the collector exactly as it is; :meth:`stop` (the
engine's stop) puts back the thresholds it found — unless something else changed them meanwhile — and
unfreezes. A process whose automatic collection is off (``gc.disable()``) is left alone too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
from typing import Any

from copilot_quant.brokers.runtime import IBRuntime
from copilot_quant.errors import BrokerError, ConfigError

__all__ = ["POLL_S", "SAFETY_NET", "BetweenBarsGc"]

log = logging.getLogger(__name__)

#: The young generation's threshold while the engine runs: the interpreter's own collections are kept for
#: bursts far beyond a bar's allocations.
SAFETY_NET = 50_000
#: How often (seconds) the loop thread looks whether a collection is due (a bar's garbage is collected
#: within this of the bar's handler returning).
POLL_S = 0.01


class BetweenBarsGc:
    """Moves the cyclic garbage collection off the path from a bar to its orders (see the module docstring)."""

    __slots__ = ("_found", "_set", "_task", "enabled")

    def __init__(self, enabled: bool = True) -> None:
        if not isinstance(enabled, bool):
            raise ConfigError(f"gc_between_bars must be True or False, got {enabled!r}")
        self.enabled = enabled
        self._found: tuple[int, int, int] | None = None  # the thresholds found at start
        self._set: tuple[int, int, int] | None = None  # the thresholds set then
        self._task: concurrent.futures.Future[Any] | None = None

    @property
    def active(self) -> bool:
        """Whether collections are being moved between bars now (started, enabled, and the gc on)."""
        return self._task is not None

    def start(self, runtime: IBRuntime) -> None:
        """Freeze, raise the young threshold and start collecting between IB's loop callbacks (idempotent)."""
        if not self.enabled or self._task is not None or not gc.isenabled():
            return
        found = gc.get_threshold()
        if found[0] <= 0:
            return  # automatic collection is off: nothing to move
        ours = (max(found[0], SAFETY_NET), found[1], found[2])
        try:
            self._task = runtime.spawn(self._collect(found), "garbage collection between bars")
        except BrokerError as exc:  # no loop to collect on: the interpreter keeps collecting as it does
            log.info("garbage collection left as it is: %s", exc)
            return
        gc.freeze()
        gc.set_threshold(*ours)
        self._found, self._set = found, ours
        log.info(
            "garbage collection between bars (gc_between_bars=True): %d objects frozen, young threshold %d "
            "while the engine runs, collected on IB's loop thread between its callbacks",
            gc.get_freeze_count(),
            ours[0],
        )

    def stop(self) -> None:
        """Stop collecting between bars; put back the thresholds found at start and unfreeze (any thread)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        if self._found is not None and gc.get_threshold() == self._set:
            gc.set_threshold(*self._found)
        gc.unfreeze()

    @staticmethod
    async def _collect(found: tuple[int, int, int]) -> None:
        young, middle, old = found
        while True:
            await asyncio.sleep(POLL_S)
            count = gc.get_count()
            if count[0] > young:
                gc.collect(2 if count[2] > old else 1 if count[1] > middle else 0)
