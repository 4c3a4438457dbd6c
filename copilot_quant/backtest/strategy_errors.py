"""A strategy hook that raised, as a backtest records it: a dict in ``result.errors``, and a log line.

The run goes on after a strategy error (see :mod:`copilot_quant.backtest.engine`); the first few errors of a
run are logged at ERROR with their traceback, the rest at DEBUG. A multi-symbol strategy that fell into the
guide's ``'Close' in data.columns`` trap gets a hint naming the safe form.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from copilot_quant.data.dates import bar_label

__all__ = ["TRAP_HINT", "StrategyErrors"]

log = logging.getLogger("copilot_quant.backtest.engine")  # where these lines have always been logged

TRAP_HINT = (
    " — hint: with several symbols the data has (Metric, Symbol) MultiIndex columns, so "
    "'Close' in data.columns is True but data['Close'] is a DataFrame with one column per symbol; "
    "select one series with data[('Close', 'AAPL')]"
)


class StrategyErrors:
    """Records one run's strategy errors into ``errors`` (and each strategy's own list, when given).

    Args:
        errors: the run's list (the engine's ``errors``), appended to.
        max_logged: how many errors are logged at ERROR (the rest at DEBUG).
        interval: the run's bar interval, for the times in messages.
        multi_symbol: whether the data has (Metric, Symbol) columns (the hint applies).
    """

    __slots__ = ("_errors", "_interval", "_logged", "_max_logged", "_multi_symbol")

    def __init__(
        self, errors: list[dict[str, Any]], max_logged: int, interval: str, multi_symbol: bool
    ) -> None:
        self._errors = errors
        self._max_logged = max_logged
        self._interval = interval
        self._multi_symbol = multi_symbol
        self._logged = 0

    def record(
        self,
        strategy: str,
        exc: Exception,
        hook: str,
        ts: datetime | None,
        own: list[dict[str, Any]] | None = None,
    ) -> None:
        """``strategy``'s hook ``hook`` raised ``exc`` at ``ts``; ``own`` is the strategy's own error list."""
        message = str(exc)
        if self._multi_symbol and "truth value of a" in message and "ambiguous" in message:
            message += TRAP_HINT
        error = {
            "timestamp": ts,
            "error": message,
            "type": type(exc).__name__,
            "strategy": strategy,
            "hook": hook,
        }
        self._errors.append(error)
        if own is not None:
            own.append(error)
        when = bar_label(ts, self._interval)
        if self._logged < self._max_logged:
            self._logged += 1
            log.error("%s.%s failed at %s: %s", strategy, hook, when, message, exc_info=exc)
        else:
            log.debug("%s.%s failed at %s: %s", strategy, hook, when, message)
