"""The result of a backtest: equity curve, fills, round-trip trades, metrics and reports.

The engine fills in the raw record (equity and cash curves, fills, orders, final positions, prices);
everything else — round trips, the trade log, metrics, the HTML report — is derived from it here, by pure
functions of those fields, computed on first use and cached (the cache is dropped if the fills or the
equity curve are replaced or grow).

Round trips are matched per symbol first in, first out (:mod:`copilot_quant.backtest.round_trips`). Lots
still open after the last bar are reported as trades marked to the last known close, with
``is_open=True``; they are left out of win rate, profit factor and ``total_trades``, which count closed
trades.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from copilot_quant.backtest import metrics as m
from copilot_quant.backtest.benchmark import Benchmark, benchmark_metrics
from copilot_quant.backtest.metric_format import DISPLAY_KEYS, SUMMARY_KEYS, format_metric, metric_label
from copilot_quant.backtest.orders import Fill, Order, Position
from copilot_quant.backtest.round_trips import TRADE_COLUMNS, FifoLots, QuoteRate, round_trips

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "DISPLAY_KEYS",
    "SUMMARY_KEYS",
    "TRADE_COLUMNS",
    "TRADE_LOG_COLUMNS",
    "BacktestResult",
    "Benchmark",
    "FifoLots",
    "format_metric",
    "metric_label",
    "round_trips",
]

log = logging.getLogger(__name__)

#: Columns of :meth:`BacktestResult.get_trade_log`, in order.
TRADE_LOG_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "symbol",
    "side",
    "quantity",
    "price",
    "commission",
    "fees",
    "total_cost",
    "order_id",
    "order_type",
)

_EPS = 1e-9


# ----------------------------------------------------------------------------------------- the result
@dataclass(slots=True)
class BacktestResult:
    """Everything a backtest produced.

    ``equity_curve`` and ``cash_curve`` have one value per bar, indexed by the bar's tz-aware (UTC)
    timestamp, recorded *after* that bar's fills and marked at its close. ``prices`` holds the close
    of every symbol per bar (columns are symbols). ``orders`` includes rejected and cancelled orders,
    each with its status and reason; ``errors`` lists strategy exceptions as
    ``{'timestamp', 'error', 'type'}`` dicts. ``benchmark`` is what the run is compared with (see
    :mod:`copilot_quant.backtest.benchmark`; the engine sets buy-and-hold of the traded symbols unless
    told otherwise), ``None`` for none.

    Several strategies: this result is the account's (all fills, the netted positions, the account's
    equity); ``strategies[name]`` is each strategy's own, with its fills, orders, errors and positions, and
    its equity curve = its capital share + its P&L. The strategies' equity curves add up to this one when
    their capital shares add up to the account's starting cash (the default).

    Derived views (computed on first use): :attr:`trades` (round trips), :meth:`get_trade_log` (one row
    per fill), :attr:`portfolio_history`, :attr:`holdings` (position per bar and symbol), :attr:`metrics`
    / :meth:`get_summary_stats`, :meth:`summary`, :meth:`to_dict`, :meth:`plot` and :meth:`to_html`.
    ``max_drawdown`` is a negative fraction (``-0.2`` = 20 % below the running peak); ratios are
    annualized with the bar frequency inferred from the equity curve's index (see
    :func:`copilot_quant.backtest.metrics.infer_periods_per_year`).
    """

    strategy_name: str
    start_date: datetime
    end_date: datetime
    initial_capital: float
    equity_curve: pd.Series
    cash_curve: pd.Series
    fills: list[Fill] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    positions: dict[str, Position] = field(default_factory=dict)
    prices: pd.DataFrame = field(default_factory=pd.DataFrame)
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: One result per strategy, keyed by its name (``name#2`` for a second instance of the same name); a
    #: run of one strategy maps its name to this result itself.
    strategies: dict[str, BacktestResult] = field(default_factory=dict, repr=False, compare=False)
    benchmark: Benchmark | None = None
    #: Futures runs: each stretch of bars whose equity closed below the maintenance margin of the futures
    #: held (:class:`~copilot_quant.backtest.multi_asset.MarginCall`); empty when there was none.
    margin_calls: list[Any] = field(default_factory=list)
    #: Futures/forex runs: the account's final cash per currency (USD first); empty for stock-only runs.
    cash_balances: dict[str, float] = field(default_factory=dict)
    #: Futures runs: each contract's multiplier by symbol (trade P&L is points × quantity × multiplier).
    multipliers: dict[str, float] = field(default_factory=dict)
    #: Forex runs: how each symbol quoted in another currency than USD (``EUR.GBP``, ``USD.JPY``) converts
    #: its trades' P&L into USD, at the rate in force when it is realized (:class:`QuoteRate`).
    quote_rates: dict[str, QuoteRate] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def final_capital(self) -> float:
        return float(self.equity_curve.iloc[-1]) if len(self.equity_curve) else float(self.initial_capital)

    @property
    def final_value(self) -> float:
        return self.final_capital

    @property
    def total_return(self) -> float:
        return self.final_capital / self.initial_capital - 1.0

    # ------------------------------------------------------------------------------------ caching
    def _cached(self, key: str, build: Any) -> Any:
        # Keyed on the identity and length of the inputs, so a result the engine is still filling in (or
        # one a user replaced a field of) is never served stale views.
        stamp = (
            id(self.fills),
            len(self.fills),
            id(self.equity_curve),
            len(self.equity_curve),
            id(self.benchmark),
        )
        if self._cache.get("__stamp__") != stamp:
            self._cache.clear()
            self._cache["__stamp__"] = stamp
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    @property
    def periods_per_year(self) -> float:
        """Bars per year, inferred from the equity curve's index (252 for daily bars)."""
        return float(self._cached("ppy", lambda: m.infer_periods_per_year(self.equity_curve.index)))

    # ------------------------------------------------------------------------------------ benchmark
    @property
    def benchmark_curve(self) -> pd.Series | None:
        """Per bar: what the initial capital would be worth in :attr:`benchmark` (``None`` without one)."""
        if self.benchmark is None:
            return None
        curve = self._cached(
            "benchmark", lambda: self.benchmark.curve(self.equity_curve.index, float(self.initial_capital))
        )
        return curve.copy()

    # ------------------------------------------------------------------------------------ trades
    def _last_prices(self) -> dict[str, tuple[pd.Timestamp, float]]:
        marks: dict[str, tuple[pd.Timestamp, float]] = {}
        if not self.prices.empty:
            for symbol in self.prices.columns:
                closes = self.prices[symbol].dropna()
                if len(closes):
                    marks[str(symbol)] = (pd.Timestamp(closes.index[-1]), float(closes.iloc[-1]))
        return marks

    @property
    def trades(self) -> pd.DataFrame:
        """Round-trip trades (FIFO), one row per matched lot; columns :data:`TRADE_COLUMNS`.

        ``side`` is ``'long'`` or ``'short'``; ``pnl`` is net of the trade's share of commissions and
        ``return`` is ``pnl`` over the entry notional. Trades still open at the end are marked to the
        last close and flagged ``is_open``.
        """
        index = self.equity_curve.index if isinstance(self.equity_curve.index, pd.DatetimeIndex) else None
        frame = self._cached(
            "trades",
            lambda: round_trips(self.fills, self._last_prices(), index, self.multipliers, self.quote_rates),
        )
        return frame.copy()

    @property
    def closed_trades(self) -> pd.DataFrame:
        """:attr:`trades` without the ones still open at the end."""
        trades = self.trades
        return trades.loc[~trades["is_open"]].reset_index(drop=True)

    def get_trade_log(self) -> pd.DataFrame:
        """One row per fill, in time order; columns :data:`TRADE_LOG_COLUMNS` (``side`` is buy/sell).
        ``total_cost`` is the notional (× the multiplier, for a futures contract) plus the commission."""
        rows = [
            {
                "timestamp": pd.Timestamp(f.timestamp),
                "symbol": f.symbol,
                "side": f.side.value,
                "quantity": f.fill_quantity,
                "price": f.fill_price,
                "commission": f.commission,
                "fees": f.fees,
                "total_cost": f.total_cost,  # the fill knows its contract's multiplier
                "order_id": f.order.order_id,
                "order_type": str(f.order.order_type),
            }
            for f in self.fills
        ]
        frame = pd.DataFrame(rows, columns=list(TRADE_LOG_COLUMNS))
        if frame.empty:
            frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
            return frame.astype(
                {
                    "quantity": "float64",
                    "price": "float64",
                    "commission": "float64",
                    "fees": "float64",
                    "total_cost": "float64",
                }
            )
        return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)

    # ------------------------------------------------------------------------------------ portfolio
    @property
    def portfolio_history(self) -> pd.DataFrame:
        """Per bar: ``equity``, ``cash``, ``positions_value`` (signed), ``returns``, ``drawdown`` (<= 0).

        The first bar's return is measured against the initial capital, so costs paid on it count.
        """
        return self._cached("history", self._build_history).copy()

    def _build_history(self) -> pd.DataFrame:
        equity = self.equity_curve.astype("float64")
        cash = self.cash_curve.reindex(equity.index).astype("float64")
        return pd.DataFrame(
            {
                "equity": equity,
                "cash": cash,
                "positions_value": equity - cash,
                "returns": m.returns_from_equity(equity, self.initial_capital),
                "drawdown": self._drawdown(),
            },
            index=equity.index,
        )

    def _drawdown(self) -> pd.Series:
        # Measured from the initial capital too: a first-bar loss is a drawdown.
        equity = self.equity_curve.astype("float64")
        peak = equity.cummax().clip(lower=self.initial_capital)
        return equity / peak - 1.0

    @property
    def holdings(self) -> pd.DataFrame:
        """Per bar (rows: the equity curve's index) and traded symbol (columns): the signed quantity held at
        the bar's close, rebuilt from the fills. A fill counts from the bar during which it happened, the
        first bar stamped at or after it. No columns without fills; all zeros without a datetime index.
        """
        return self._cached("holdings", self._build_holdings).copy()

    def _build_holdings(self) -> pd.DataFrame:
        index = self.equity_curve.index
        log_ = self.get_trade_log()
        symbols = [str(s) for s in log_["symbol"].unique()]
        held = np.zeros((len(index), len(symbols)))
        if len(log_) and isinstance(index, pd.DatetimeIndex):
            signed = np.where(log_["side"] == "buy", 1.0, -1.0) * log_["quantity"].to_numpy()
            bars = index.as_unit("ns").searchsorted(
                log_["timestamp"].astype(index.as_unit("ns").dtype), side="left"
            )
            for k, symbol in enumerate(symbols):
                mine = (log_["symbol"] == symbol).to_numpy()
                change = np.zeros(len(index) + 1)
                np.add.at(change, bars[mine], signed[mine])
                held[:, k] = np.cumsum(change)[: len(index)]
        return pd.DataFrame(held, index=index, columns=pd.Index(symbols, dtype=object))

    def _invested(self) -> np.ndarray:
        """Per bar: whether any position was held at the bar's close, rebuilt from the fills."""
        held = self._cached("holdings", self._build_holdings).to_numpy()
        return np.asarray((np.abs(held) > _EPS).any(axis=1), dtype=bool)

    # ------------------------------------------------------------------------------------ metrics
    @property
    def metrics(self) -> dict[str, Any]:
        """Performance metrics (a new dict each time); see :meth:`get_summary_stats`."""
        return dict(self._cached("metrics", self._build_metrics))

    def get_summary_stats(self) -> dict[str, Any]:
        """The metrics dict: every key in :data:`SUMMARY_KEYS` plus a few extras.

        ``total_return``/``annualized_return``/``volatility``/``max_drawdown``/``win_rate``/``exposure``
        are fractions (``0.1`` = 10 %). ``max_drawdown`` is **negative** (or 0). ``max_drawdown_duration``
        is the longest time below a previous peak in bars (``max_drawdown_days``: the same in calendar
        days). Win rate, profit factor and ``total_trades`` count closed round trips only
        (``open_trades`` counts the rest). ``exposure`` is the share of bars that ended with a position
        open. ``volatility`` and the ratios are annualized with :attr:`periods_per_year`; the risk-free
        rate is 0. Ratios are ``nan`` where undefined (e.g. Sharpe of a flat equity curve).
        ``benchmark_return``, ``excess_return`` (total return minus the benchmark's), ``alpha`` (annualized)
        and ``beta`` compare the run with :attr:`benchmark` (daily returns; see
        :mod:`copilot_quant.backtest.benchmark`); all four are ``nan`` without a benchmark.
        """
        return self.metrics

    def _build_metrics(self) -> dict[str, Any]:
        ppy = self.periods_per_year
        history = self._cached("history", self._build_history)
        rets = history["returns"]
        equity = pd.concat(
            [
                pd.Series([float(self.initial_capital)]),
                self.equity_curve.astype("float64").reset_index(drop=True),
            ]
        )
        dd = m.max_drawdown_stats(equity.set_axis(range(len(equity))))
        dd_days = _NaN
        if dd.duration_bars and isinstance(self.equity_curve.index, pd.DatetimeIndex):
            # Position p of `equity` is bar p-1 (position 0 is the capital before the first bar).
            idx = self.equity_curve.index
            start = idx[max(dd.longest_start - 1, 0)]
            dd_days = (idx[dd.longest_end - 1] - start) / pd.Timedelta(days=1)
        trades = self._cached(
            "trades",
            lambda: round_trips(
                self.fills,
                self._last_prices(),
                self.equity_curve.index if isinstance(self.equity_curve.index, pd.DatetimeIndex) else None,
                self.multipliers,
                self.quote_rates,
            ),
        )
        closed = trades.loc[~trades["is_open"], "pnl"]
        compared = benchmark_metrics(
            self.equity_curve, self.benchmark_curve, float(self.initial_capital), ppy
        )
        cagr = m.annualized_return(rets, ppy) if len(rets) else _NaN
        max_dd = dd.max_drawdown if len(rets) else _NaN
        return {
            "total_return": self.total_return,
            **compared,
            "annualized_return": cagr,
            "volatility": m.annualized_volatility(rets, ppy),
            "sharpe_ratio": m.sharpe_ratio(rets, ppy),
            "sortino_ratio": m.sortino_ratio(rets, ppy),
            "max_drawdown": max_dd,
            "max_drawdown_duration": int(dd.duration_bars),
            "max_drawdown_days": dd_days,
            "calmar_ratio": cagr / abs(max_dd) if max_dd < 0 else _NaN,
            "win_rate": m.win_rate(closed),
            "profit_factor": m.profit_factor(closed),
            "exposure": m.exposure(self._invested()),
            "total_trades": len(closed),
            "open_trades": int(trades["is_open"].sum()),
            "avg_trade_pnl": float(closed.mean()) if len(closed) else _NaN,
            "total_commission": float(sum(f.commission for f in self.fills)),
            "total_fees": float(sum(f.fees for f in self.fills)),
            "total_fills": len(self.fills),
            "rejected_orders": sum(1 for o in self.orders if str(o.status) == "rejected"),
            "initial_capital": float(self.initial_capital),
            "final_value": self.final_value,
            "periods_per_year": ppy,
            "bars": len(self.equity_curve),
        }

    # ------------------------------------------------------------------------------------ output
    def summary(self) -> str:
        """A short plain-text report of the run and its metrics."""
        stats = self.metrics
        lines = [
            f"Backtest of {self.strategy_name}: {_fmt_time(self.start_date)} -> {_fmt_time(self.end_date)}"
            f" ({stats['bars']} bars)",
            f"  Initial capital     {stats['initial_capital']:>16,.2f}",
            f"  Final value         {stats['final_value']:>16,.2f}",
        ]
        if self.benchmark is not None:
            lines.append(f"  Compared with {self.benchmark.name}")
        lines += [f"  {metric_label(key):<20}{format_metric(key, stats[key]):>16}" for key in DISPLAY_KEYS]
        if self.errors:
            lines.append(f"  Strategy errors     {len(self.errors):>16}")
        return "\n".join(lines + self._strategy_lines())

    @property
    def has_sleeves(self) -> bool:
        """Whether the run had several strategies (or one with a capital share): the per-strategy results
        then differ from the account's."""
        parts = list(self.strategies.values())
        return len(parts) > 1 or any(p.initial_capital != self.initial_capital for p in parts)

    def _strategy_lines(self) -> list[str]:
        """With several strategies: one line each (capital, final value, P&L, return, fills), then the account."""
        if not self.has_sleeves:
            return []
        width = max(len(k) for k in [*self.strategies, "account"])
        head = f"  {'Per strategy':<{width}} {'capital':>14} {'final value':>14} {'P&L':>12} {'return':>8} {'fills':>6}"
        rows = [*self.strategies.items(), ("account", self)]
        return [
            head,
            *(
                f"  {key:<{width}} {part.initial_capital:>14,.2f} {part.final_value:>14,.2f} "
                f"{part.final_value - part.initial_capital:>12,.2f} {part.total_return:>8.2%} {len(part.fills):>6}"
                for key, part in rows
            ),
        ]

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: run info, metrics (``nan``/``inf`` become ``None``), trades and the equity curve."""
        trades = self.trades
        trades["entry_time"] = trades["entry_time"].map(_iso)
        trades["exit_time"] = trades["exit_time"].map(_iso)
        trades["duration"] = trades["duration"].dt.total_seconds()
        return {
            "strategy_name": self.strategy_name,
            "start_date": _iso(self.start_date),
            "end_date": _iso(self.end_date),
            "initial_capital": float(self.initial_capital),
            "final_value": self.final_value,
            "metrics": {k: _json_number(v) for k, v in self.metrics.items()},
            "benchmark": self.benchmark.name if self.benchmark is not None else None,
            "trades": [
                {k: _json_number(v) for k, v in row.items()} for row in trades.to_dict(orient="records")
            ],
            "equity_curve": {_iso(ts): float(v) for ts, v in self.equity_curve.items()},
            "positions": {
                sym: {"quantity": p.quantity, "avg_cost": p.avg_cost, "market_value": p.market_value}
                for sym, p in self.positions.items()
            },
            "errors": [
                {k: _iso(v) if isinstance(v, datetime) else v for k, v in e.items()} for e in self.errors
            ],
        }

    def plot(self) -> go.Figure:
        """The report's charts as a plotly Figure: equity, drawdown and each symbol's price with trades."""
        from copilot_quant.reports.backtest import build_figure  # noqa: PLC0415 - plotly loads on demand

        return build_figure(self)

    def to_html(self, path: str | Path) -> Path:
        """Write a self-contained HTML report (works offline) to ``path``; returns the path written."""
        from copilot_quant.reports.backtest import write_html  # noqa: PLC0415 - plotly loads on demand

        return write_html(self, path)


# ------------------------------------------------------------------------------------------- helpers
_NaN = float("nan")


def _fmt_time(value: Any) -> str:
    try:
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:  # dates are shown as the exchange's days
            ts = ts.tz_convert("America/New_York")
        return ts.strftime("%Y-%m-%d")
    except (ValueError, TypeError):
        return str(value)


def _iso(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime | pd.Timestamp):
        return pd.Timestamp(value).isoformat()
    return value


def _json_number(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value
