"""Liveness of each keepUpToDate bar stream, judged apart from quotes.

A bar stream can die silently while ticks keep flowing (after farm flaps, IB's nightly reset or a
competing login): no error, no bars, and a connection-wide staleness watchdog fed by ticks never notices.
:class:`BarStreamWatch` compares, per symbol, when the last bar update and the last *trade* arrived
(quote changes without a trade move no bar): trades reported for ``limit`` seconds after the last bar
update mean the stream is dead (IB updates a forming bar every few seconds while the symbol trades).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BarStreamWatch"]


@dataclass(slots=True)
class BarStreamWatch:
    """Per-symbol arrival times (``time.monotonic()`` seconds) of bar updates and ticks."""

    limit: float
    last_bar: dict[str, float] = field(default_factory=dict)
    last_tick: dict[str, float] = field(default_factory=dict)
    #: How many times each symbol's stream was found dead (and restarted) so far.
    stalls: dict[str, int] = field(default_factory=dict)

    def bar(self, symbol: str, now: float) -> None:
        self.last_bar[symbol] = now

    def tick(self, symbol: str, now: float) -> None:
        self.last_tick[symbol] = now

    def forget(self, symbol: str) -> None:
        self.last_bar.pop(symbol, None)
        self.last_tick.pop(symbol, None)

    def stalled(self, now: float) -> list[str]:
        """Symbols whose ticks kept arriving for more than ``limit`` seconds after their last bar update."""
        out = []
        for symbol, bar_at in self.last_bar.items():
            tick_at = self.last_tick.get(symbol)
            if tick_at is not None and tick_at - bar_at > self.limit and now - bar_at > self.limit:
                out.append(symbol)
        return out

    def restarted(self, symbol: str, now: float) -> int:
        """Note a restart of ``symbol``'s stream (its clock starts again); returns its stall count."""
        self.last_bar[symbol] = now
        self.stalls[symbol] = self.stalls.get(symbol, 0) + 1
        return self.stalls[symbol]
