"""Backtest–live parity, proven: run one strategy in a backtest and live against the simulated gateway.

:func:`run_parity` takes a strategy class, symbols, a data source and a date range, and:

1. runs :class:`~copilot_quant.backtest.engine.BacktestEngine` on the bars of the range;
2. starts an in-process :class:`~copilot_quant.gateway.GatewayServer` replaying the **same bars** (only
   those of the range, so both runs see identical windows), with the same commission and slippage
   model objects (and the same ``volume_limit``), and an account holding the same capital; its clock starts at the close of the range's
   first bar (the live engine needs one bar of history: IB answers an empty history request with error
   162), so that bar is history in both runs — the backtest's strategy skips it too — and the clock is
   then stepped one bar at a time;
3. runs :class:`~copilot_quant.backtest.live_engine.LiveStrategyEngine` with a fresh instance of the
   strategy against it. After each step the harness waits until the engine has handed that bar to the
   strategy, the gateway has acknowledged every order the engine sent and confirmed every cancel the
   strategy requested (``strategy.cancel``, in force before the next bar as in the backtest), answered
   every modification (``strategy.modify``, likewise), and every
   execution the gateway made has reached the engine (``on_fill``) — only then does it step again, so the
   live run is as deterministic as the backtest;
   At the end the engine is stopped with ``cancel_on_stop`` (the backtest cancels what still works when
   the data ends).
4. compares orders (symbol, side, quantity, type, prices, final status), fills (timestamp, symbol, side,
   quantity, price, commission), final equity and the strategy's errors (how many, on how many bars,
   the first bar), and returns a :class:`ParityReport` whose ``diffs`` table is empty when parity holds.

Strategy errors: both runs see the strategy through the same thin wrapper, which counts the bars handed to
it and records every exception its hooks raise (:class:`StrategyFailure`, by bar) before re-raising it to
the engine; so the two runs' errors are counted in one way and compared. A strategy that raises on every
bar can still be "identical" (no orders on either side): :attr:`ParityReport.every_bar_errored` says so.
Each engine logs only the first strategy error with its traceback (the backtest's ``max_logged_errors=1``;
live, the first as a WARNING and the rest at DEBUG), not one traceback per bar.

Fill timestamp convention: **the close of the bar the fill happened in** (the bar's stamp), which is what
the backtest reports. The gateway stamps an execution with the instant on the bar's price path where it
happened (e.g. the open for a market order); the harness maps it to the stamp of the bar containing that
instant, so both sides are compared in one convention. Fills of different symbols in the same bar are
compared in symbol order (the gateway replays one symbol's bar after the other). An order that expired
(DAY) counts as cancelled: IB reports expiry as Cancelled.

The parts: the replayed bars (:mod:`copilot_quant.parity_replay`), the rows both runs record
(:mod:`copilot_quant.parity_rows`), the backtest half (:mod:`copilot_quant.parity_backtest`), the live half
(:mod:`copilot_quant.parity_live`), the strategy wrapper (:mod:`copilot_quant.parity_watch`) and the reports
(:mod:`copilot_quant.parity_report`); this module checks the input, runs both halves and compares them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from copilot_quant.backtest.books import check_capital
from copilot_quant.backtest.costs import CommissionModel, SlippageModel, commission_model, slippage_model
from copilot_quant.backtest.interfaces import IDataFeed
from copilot_quant.backtest.participation import check_volume_limit
from copilot_quant.backtest.rolls import check_roll_days
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.data.providers import provider_from_spec
from copilot_quant.errors import ConfigError
from copilot_quant.model.spread import AUTO, SpreadModel, resolve_spread
from copilot_quant.parity_backtest import backtest_run
from copilot_quant.parity_live import live_run
from copilot_quant.parity_replay import ReplayFeed, bar_frames, contract_frames
from copilot_quant.parity_report import (
    BAR_HOOKS,
    FILL_COLUMNS,
    ORDER_COLUMNS,
    AccountParityReport,
    ParityReport,
    ParityStrategy,
    RunSummary,
    StrategyFailure,
)
from copilot_quant.parity_rows import final_status

__all__ = [
    "BAR_HOOKS",
    "FILL_COLUMNS",
    "ORDER_COLUMNS",
    "AccountParityReport",
    "ParityReport",
    "ParityStrategy",
    "RunSummary",
    "StrategyFailure",
    "run_account_parity",
    "run_parity",
]

log = logging.getLogger(__name__)

# Their names here before the halves moved to their own modules (tests import them from this module).
_ReplayFeed = ReplayFeed
_final_status = final_status

_PRICE_TOL = 1e-6


def _in_bar_order(fills: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Fills in a canonical order: by bar and symbol, then side, price, quantity and commission.

    Fills stamped with one bar are compared as a set: the gateway replays symbols one after the other,
    and within a symbol fills them in the order prices reach them, while the backtest books one bar's
    fills in submission order. Neither order is a difference; *which* fills a bar had is.
    """
    return sorted(fills, key=lambda row: (row[0], row[1], row[2], row[4], row[3], row[5]))


def _compare(backtest: RunSummary, live: RunSummary) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, float) and isinstance(b, float):
            return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=_PRICE_TOL)
        return bool(a == b)

    for kind, columns, left, right in (
        ("order", ORDER_COLUMNS, backtest.orders, live.orders),
        ("fill", FILL_COLUMNS, _in_bar_order(backtest.fills), _in_bar_order(live.fills)),
    ):
        for i in range(max(len(left), len(right))):
            a = left[i] if i < len(left) else None
            b = right[i] if i < len(right) else None
            if a is None or b is None:
                rows.append({"kind": kind, "index": i, "field": "(missing)", "backtest": a, "live": b})
                continue
            for name, x, y in zip(columns, a, b, strict=True):
                if not same(x, y):
                    rows.append({"kind": kind, "index": i, "field": name, "backtest": x, "live": y})
    for name in ("final_equity", "final_cash"):
        x, y = getattr(backtest, name), getattr(live, name)
        if not math.isclose(x, y, rel_tol=1e-9, abs_tol=0.005):
            rows.append({"kind": "equity", "index": 0, "field": name, "backtest": x, "live": y})
    # A strategy that raises in one run only (or on other bars) is a difference, even with equal orders.
    for name, x, y in (
        ("strategy_errors", len(backtest.strategy_errors), len(live.strategy_errors)),
        ("errored_bars", backtest.errored_bars, live.errored_bars),
        ("first_error_bar", backtest.first_error_bar, live.first_error_bar),
    ):
        if x != y:
            rows.append({"kind": "errors", "index": 0, "field": name, "backtest": x, "live": y})
    return pd.DataFrame(rows, columns=["kind", "index", "field", "backtest", "live"])


def run_parity(
    strategy_class: type[Strategy],
    symbols: Sequence[str] | str,
    start: Any,
    end: Any,
    *,
    strategy_kwargs: Mapping[str, Any] | None = None,
    data: str | IDataFeed = "sample",
    capital: float = 100_000.0,
    commission: float | str | CommissionModel | None = 0.001,
    slippage: float | SlippageModel | None = 0.0005,
    interval: str = "1d",
    step_timeout: float = 20.0,
    volume_limit: float | None = None,
    spread: SpreadModel | str | int | None = AUTO,
    roll_days: int = 5,
    auto_roll: bool = False,
) -> ParityReport:
    """Run ``strategy_class(**strategy_kwargs)`` in a backtest and live on the same bars; compare them.

    ``data`` is a data spec (``'sample'``, ``'synthetic'``, ``'csv:DIR'``, ``'store'``) or an
    :class:`IDataFeed`. ``commission``/``slippage`` take a rate or a model, as ``BacktestEngine`` does;
    the same model objects serve both runs. ``volume_limit`` (a fraction of each bar's volume, see
    :mod:`copilot_quant.backtest.participation`) applies to both: the backtest engine and the gateway.
    ``spread`` (``'auto'``, the default: estimated from the bars; a
    :class:`~copilot_quant.model.spread.SpreadModel`, ticks or ``'5bps'``; ``None`` turns it off) quotes
    the same bid/ask on both sides: market orders and triggered stops fill at the touch, limits when the
    quote crosses them. A continuous future (``MES``)
    trades the contract of each day in both runs (``roll_days``, ``auto_roll`` as in
    :class:`~copilot_quant.backtest.engine.BacktestEngine`); its contracts' bars are replayed too. Bars are put on the tick
    grid for both runs (the gateway prints on it). Raises :class:`~copilot_quant.errors.ConfigError` for bad
    input, :class:`~copilot_quant.errors.DataError` when the range has no bars, and
    :class:`~copilot_quant.errors.GatewayError` when the live run stalls.
    """
    if not (isinstance(strategy_class, type) and issubclass(strategy_class, Strategy)):
        raise ConfigError(f"strategy_class must be a Strategy subclass, got {strategy_class!r}")
    return run_account_parity(
        [ParityStrategy(strategy_class, dict(strategy_kwargs or {}))],
        symbols,
        start,
        end,
        data=data,
        capital=capital,
        commission=commission,
        slippage=slippage,
        interval=interval,
        step_timeout=step_timeout,
        volume_limit=volume_limit,
        spread=spread,
        roll_days=roll_days,
        auto_roll=auto_roll,
    ).account


def _check_specs(specs: Sequence[ParityStrategy]) -> None:
    if not specs:
        raise ConfigError("run_account_parity needs at least one ParityStrategy")
    labels: set[str] = set()
    for spec in specs:
        cls = spec.strategy_class
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise ConfigError(f"strategy_class must be a Strategy subclass, got {cls!r}")
        if spec.label in labels:
            raise ConfigError(
                f"two strategies are named {spec.label!r}; each strategy's orders are tagged with its name, "
                "so give each its own: ParityStrategy(..., name='fast')"
            )
        labels.add(spec.label)
        check_capital(spec.capital)


def run_account_parity(
    strategies: Sequence[ParityStrategy],
    symbols: Sequence[str] | str,
    start: Any,
    end: Any,
    *,
    data: str | IDataFeed = "sample",
    capital: float = 100_000.0,
    commission: float | str | CommissionModel | None = 0.001,
    slippage: float | SlippageModel | None = 0.0005,
    interval: str = "1d",
    step_timeout: float = 20.0,
    volume_limit: float | None = None,
    spread: SpreadModel | str | int | None = AUTO,
    roll_days: int = 5,
    auto_roll: bool = False,
) -> AccountParityReport:
    """Run several strategies on one account in a backtest and live on the same bars; compare the account
    and each strategy (its own orders, fills, errors, and its sleeve's cash and equity).

    The options are :func:`run_parity`'s. Strategy names (:attr:`ParityStrategy.label`) must differ.
    """
    if isinstance(symbols, str):
        symbols = [symbols]
    names = [s.strip().upper() for s in symbols if s.strip()]
    if not names:
        raise ConfigError("run_parity needs at least one symbol, e.g. symbols=['AAPL']")
    _check_specs(strategies)
    if not capital > 0:
        raise ConfigError(f"capital must be positive, got {capital}")
    volume_limit = check_volume_limit(volume_limit)
    provider = provider_from_spec(data) if isinstance(data, str) else data
    cost = commission_model(commission)
    slip = resolve_spread(slippage_model(slippage), spread)
    check_roll_days(roll_days)
    frames, first, last = bar_frames(provider, names, start, end, interval)
    stamps = pd.DatetimeIndex(sorted(set().union(*(f.index for f in frames.values()))))
    frames |= contract_frames(provider, names, first, last, interval=interval, roll_days=roll_days)
    options: dict[str, Any] = {
        "capital": capital,
        "commission": cost,
        "slippage": slip,
        "interval": interval,
        "volume_limit": volume_limit,
        "roll_days": roll_days,
        "auto_roll": auto_roll,
    }
    backtest, backtest_parts = backtest_run(
        strategies, ReplayFeed(frames), names, stamps, first=first, last=last, **options
    )
    log.info(
        "parity: backtest done (%d orders, %d fills); starting the live run",
        len(backtest.orders),
        len(backtest.fills),
    )
    live, live_parts = live_run(strategies, frames, names, stamps, step_timeout=step_timeout, **options)

    def report(name: str, b: RunSummary, lv: RunSummary) -> ParityReport:
        return ParityReport(name, names, first, last, len(stamps), b, lv, _compare(b, lv))

    labels = [s.label for s in strategies]
    return AccountParityReport(
        account=report(" + ".join(labels), backtest, live),
        strategies={k: report(k, backtest_parts[k], live_parts[k]) for k in labels},
    )
