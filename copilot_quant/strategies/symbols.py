"""Which symbol a single-symbol strategy trades: the one it was given, else the run's only symbol.

Single-symbol data (flat ``Open, High, Low, Close, Volume`` columns) carries no symbol name, so a strategy
that hard-codes a default ticker would send orders for it while reading another symbol's prices
(``--symbols MSFT`` trading AAPL on MSFT's bars). The examples call :func:`traded_symbol` from
``initialize`` instead, when the engine has told the strategy what the run trades (``self.symbols``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from copilot_quant.errors import ConfigError

if TYPE_CHECKING:
    from copilot_quant.backtest.strategy import Strategy

__all__ = ["traded_symbol"]


def traded_symbol(strategy: Strategy, requested: str | None) -> str:
    """``requested`` (upper-cased) if the run trades it, or the run's only symbol when ``requested`` is None.

    Raises :class:`~copilot_quant.errors.ConfigError` when ``requested`` is not one of the run's symbols,
    or when none was requested and the run has several (or none) to choose from.
    """
    run = tuple(s.upper() for s in strategy.symbols)
    if requested is not None:
        symbol = requested.strip().upper()
        if run and symbol not in run:
            raise ConfigError(
                f"{strategy.name} is set to trade {symbol} (symbol={symbol!r}), which this run has no data "
                f"for (symbols: {', '.join(run)}); run it on {symbol} or set symbol to one of these "
                f"(--param symbol={run[0]})"
            )
        return symbol
    if len(run) != 1:
        what = f"this run has {len(run)}: {', '.join(run)}" if run else "the engine gave it none"
        raise ConfigError(
            f"{strategy.name} trades one symbol and {what}; pick one with symbol='AAPL' "
            "(--param symbol=AAPL on the command line)"
        )
    return run[0]
