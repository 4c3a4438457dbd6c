"""What a backtest is compared with: a buy-and-hold benchmark, its curve, and alpha and beta against it.

A strategy that made 5 % while its stock rose 1,000 % did not do well; the result says so by carrying a
:class:`Benchmark` (by default: buy-and-hold of the traded symbols, equal weight; or any symbol, traded or
not). The benchmark is for reporting only: the strategy never sees it, so reading its bars over the whole
run is no look-ahead.

Conventions:

* The benchmark's capital is the run's initial capital, split equally between its symbols and spent on
  each at its first close in the run (a symbol that starts trading later waits in cash until then). The
  sleeves are never rebalanced and pay no costs. Between bars of the benchmark its last close holds.
* ``benchmark_return`` is the benchmark curve's last value over the capital, minus one; ``excess_return``
  is the strategy's total return minus it.
* ``beta`` and ``alpha`` come from a regression of the strategy's **daily** returns on the benchmark's
  (intraday curves are first cut to their last value per New York day; weekly or coarser bars are used as
  they are): ``beta = cov(s, b) / var(b)``, ``alpha = (1 + mean(s - beta·b))^N - 1`` annualized with
  ``N`` periods a year, the same definitions as empyrical's ``alpha_beta`` (a test checks them against it).
  Both are ``nan`` with fewer than two periods or a benchmark that never moved.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from copilot_quant.backtest import metrics as m
from copilot_quant.data.dates import EXCHANGE_TZ
from copilot_quant.errors import ConfigError

__all__ = [
    "BENCHMARK_KEYS",
    "BUY_AND_HOLD",
    "Benchmark",
    "alpha_beta",
    "benchmark_metrics",
    "daily_returns",
    "resolve_benchmark",
]

#: ``run(benchmark=BUY_AND_HOLD)`` (the default): buy-and-hold of the traded symbols, equal weight. It is
#: not a ticker (tickers have no underscore), so it cannot be taken for one.
BUY_AND_HOLD = "buy_and_hold"

#: The benchmark's keys in a result's metrics dict, in display order.
BENCHMARK_KEYS: tuple[str, ...] = ("benchmark_return", "excess_return", "alpha", "beta")

_NAN = float("nan")
_ZERO_VARIANCE = 1e-30  # the bound empyrical uses: below it the benchmark did not move
_DAILY = 252.0


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A buy-and-hold benchmark: its ``name`` as the report shows it and the closes of its symbols.

    ``closes`` has one column per symbol (bars on any timestamps, UTC); see the module docstring for how
    :meth:`curve` invests in them.
    """

    name: str
    closes: pd.DataFrame

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.closes.columns)

    def curve(self, index: pd.Index, capital: float) -> pd.Series:
        """Value at each bar of ``index`` of ``capital`` put into the benchmark at its first close."""
        if not len(index) or self.closes.empty:
            return pd.Series(np.full(len(index), _NAN), index=index, dtype="float64", name="benchmark")
        closes = self.closes.astype("float64").sort_index()
        closes = closes[~closes.index.duplicated(keep="last")]
        # the last close at or before each bar (a benchmark with other bar times, or gaps, still lines up)
        aligned = closes.reindex(closes.index.union(index)).ffill().reindex(index)
        values = aligned.to_numpy()
        seen = ~np.isnan(values)
        # each symbol's entry price: its first close in the run (NaN for a symbol without any)
        entry = np.full(values.shape[1], np.nan)
        traded = seen.any(axis=0)
        entry[traded] = values[seen.argmax(axis=0)[traded], np.flatnonzero(traded)]
        sleeve = capital / values.shape[1]
        # before a symbol's first close its sleeve is cash; a symbol with no close at all stays cash
        with np.errstate(invalid="ignore", divide="ignore"):
            growth = np.where(seen & (entry > 0), values / entry, 1.0)
        return pd.Series(sleeve * growth.sum(axis=1), index=index, name="benchmark")


def resolve_benchmark(
    benchmark: str | None,
    traded: pd.DataFrame,
    load_closes: Callable[[str], pd.Series],
) -> Benchmark | None:
    """The benchmark a run asked for: ``None`` (no benchmark), :data:`BUY_AND_HOLD` (the traded symbols'
    closes, ``traded``) or a ticker (its closes from ``traded`` if it was traded, else ``load_closes``)."""
    if benchmark is None:
        return None
    if not isinstance(benchmark, str) or not benchmark.strip():
        raise ConfigError(
            f"benchmark must be a ticker such as 'SPY', {BUY_AND_HOLD!r} (the default: buy-and-hold of the "
            f"traded symbols) or None (no benchmark); got {benchmark!r}"
        )
    if benchmark == BUY_AND_HOLD:
        return Benchmark(_hold_name(list(traded.columns)), traded)
    symbol = benchmark.strip().upper()
    traded_it = symbol in traded.columns
    closes = traded[[symbol]] if traded_it else load_closes(symbol).rename(symbol).to_frame()
    return Benchmark(f"buy-and-hold {symbol}", closes)


def _hold_name(symbols: Sequence[object]) -> str:
    names = [str(s) for s in symbols]
    if len(names) == 1:
        return f"buy-and-hold {names[0]}"
    shown = ", ".join(names) if len(names) <= 5 else f"{len(names):,} symbols"
    return f"buy-and-hold {shown} (equal weight)"


# ------------------------------------------------------------------------------------------- metrics
def daily_returns(curve: pd.Series, initial: float, periods_per_year: float) -> tuple[pd.Series, float]:
    """The curve's returns for the regression and their periods a year.

    Intraday bars (more than 252 a year) are cut to the last value of each New York day first; daily or
    coarser bars are used as they are. The first return is measured from ``initial``.
    """
    values = curve.astype("float64")
    if periods_per_year > _DAILY and isinstance(values.index, pd.DatetimeIndex) and len(values):
        local = values.index.tz_convert(EXCHANGE_TZ) if values.index.tz is not None else values.index
        days = pd.DatetimeIndex(local).normalize()
        values = values.groupby(days).last()
        periods_per_year = _DAILY
    return m.returns_from_equity(values, initial), periods_per_year


def alpha_beta(
    returns: pd.Series | np.ndarray, benchmark: pd.Series | np.ndarray, periods_per_year: float
) -> tuple[float, float]:
    """``(alpha, beta)`` of ``returns`` regressed on ``benchmark`` (aligned, per period); alpha annualized
    as ``(1 + alpha_per_period) ** periods_per_year - 1``. Periods where either is NaN are left out."""
    s = np.asarray(returns, dtype="float64")
    b = np.asarray(benchmark, dtype="float64")
    both = ~(np.isnan(s) | np.isnan(b))
    s, b = s[both], b[both]
    if len(s) < 2:
        return _NAN, _NAN
    deviation = b - b.mean()
    variance = float(np.mean(deviation**2))
    if variance < _ZERO_VARIANCE:
        return _NAN, _NAN
    beta = float(np.mean(deviation * s)) / variance
    per_period = float(np.mean(s - beta * b))
    return (1.0 + per_period) ** periods_per_year - 1.0, beta


def benchmark_metrics(
    equity: pd.Series,
    benchmark_curve: pd.Series | None,
    initial: float,
    periods_per_year: float,
) -> dict[str, float]:
    """:data:`BENCHMARK_KEYS` for a strategy's ``equity`` against ``benchmark_curve`` (``nan`` without one)."""
    if benchmark_curve is None or not len(equity) or benchmark_curve.isna().all():
        return dict.fromkeys(BENCHMARK_KEYS, _NAN)
    last = float(benchmark_curve.iloc[-1])
    bench_return = last / initial - 1.0 if math.isfinite(last) else _NAN
    total = float(equity.iloc[-1]) / initial - 1.0
    strategy, ppy = daily_returns(equity, initial, periods_per_year)
    bench, _ = daily_returns(benchmark_curve, initial, periods_per_year)
    alpha, beta = alpha_beta(strategy.to_numpy(), bench.reindex(strategy.index).to_numpy(), ppy)
    return {
        "benchmark_return": bench_return,
        "excess_return": total - bench_return,
        "alpha": alpha,
        "beta": beta,
    }
