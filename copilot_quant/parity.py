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
"""

from __future__ import annotations

import copy
import logging
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import pandas as pd

from copilot_quant.backtest.books import check_capital
from copilot_quant.backtest.costs import (
    CommissionModel,
    SlippageModel,
    commission_model,
    slippage_model,
)
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.interfaces import IDataFeed
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.order_outcomes import OrderOutcome
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.participation import check_volume_limit
from copilot_quant.backtest.results import BacktestResult
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.data.dates import resolve_range, slice_range
from copilot_quant.data.providers import provider_from_spec
from copilot_quant.errors import ConfigError, DataError, GatewayError
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from copilot_quant.live.bar_clock import BAR_SETTLE_NS
from copilot_quant.model.instruments import AssetClass, InstrumentRegistry
from copilot_quant.model.spread import SpreadModel, grid_frame, spread_model, with_spread
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
from copilot_quant.parity_watch import Watch, after_first_bar, bar_of, utc, watched

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

#: Seconds the replay's clock passes after each bar: the live engine's settle margin for quote-only bars.
_SETTLE_SECONDS = BAR_SETTLE_NS / 1e9 + 1.0

_PRICE_TOL = 1e-6
_LIVE_CLIENT_ID = 7


class _ReplayFeed(IDataFeed):
    """The exact bars of the range, served to the gateway (nothing before or after them exists)."""

    def __init__(self, frames: Mapping[str, pd.DataFrame]) -> None:
        super().__init__()
        self._frames = dict(frames)

    def symbols(self) -> list[str]:
        return sorted(self._frames)

    def get_historical_data(
        self,
        symbol: str,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        interval: str = "1d",
    ) -> pd.DataFrame:
        frame = self._frames.get(symbol.upper())
        if frame is None:
            raise DataError(f"the parity replay has no data for {symbol!r}")
        lo, hi = resolve_range(start_date, end_date)
        return slice_range(frame, lo, hi).copy()


def _bar_frames(
    provider: IDataFeed, symbols: Sequence[str], start: Any, end: Any, interval: str
) -> tuple[dict[str, pd.DataFrame], pd.Timestamp, pd.Timestamp]:
    lo, hi = resolve_range(start, end)
    frames: dict[str, pd.DataFrame] = {}
    for symbol in symbols:
        frame = provider.get_historical_data(symbol, start_date=lo, end_date=hi, interval=interval)
        frame = slice_range(frame, lo, hi)
        if frame.empty:
            raise DataError(f"no {interval} bars for {symbol} between {start} and {end}; widen the range")
        # on the tick grid, as the gateway prints them: both runs then walk the same prices (a future's or
        # a pair's own tick, the stocks' cent grid otherwise)
        frames[symbol] = _on_tick_grid(
            symbol, frame[["Open", "High", "Low", "Close", "Volume"]].astype(float)
        )
    first = min(f.index[0] for f in frames.values())
    last = max(f.index[-1] for f in frames.values())
    return frames, first, last


def _on_tick_grid(symbol: str, frame: pd.DataFrame) -> pd.DataFrame:
    inst = InstrumentRegistry().resolve(symbol)
    if inst.kind is AssetClass.STOCK:
        return grid_frame(frame)
    out = frame.copy()
    prices = ["Open", "High", "Low", "Close"]
    out[prices] = (out[prices] / inst.tick_size).round() * inst.tick_size
    return out


def _final_status(order: Order) -> str:
    # IB reports a DAY order that expired at the session end as Cancelled, so the live side cannot tell
    # the two apart; both mean "ended unfilled without a rejection".
    status = _text(order.status)
    return "cancelled" if status == "expired" else status


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))


def _order_row(order: Order) -> tuple[Any, ...]:
    return (
        order.symbol,
        _text(order.side),
        float(order.quantity),
        _text(order.order_type),
        order.limit_price,
        order.stop_price,
        _final_status(order),
    )


def _fill_row(fill: Fill, stamp: pd.Timestamp) -> tuple[Any, ...]:
    order = fill.order
    return (
        stamp,
        order.symbol,
        _text(order.side),
        float(fill.fill_quantity),
        float(fill.fill_price),
        float(fill.commission),
    )


def _backtest_summary(result: BacktestResult, bars: int, failures: list[StrategyFailure]) -> RunSummary:
    failures = list(failures)
    engine_first = result.errors[0] if result.errors else None
    if failures and engine_first is not None and engine_first.get("timestamp") is not None:
        first = failures[0]
        if engine_first.get("hook") == first.hook and utc(engine_first["timestamp"]) == first.bar:
            # the same exception: the engine's text adds what to do (e.g. the MultiIndex-columns hint)
            failures[0] = replace(first, error=f"{engine_first.get('type')}: {engine_first.get('error')}")
    summary = RunSummary("backtest", bars_given=bars, strategy_errors=failures)
    summary.orders = [_order_row(o) for o in result.orders]
    summary.outcomes = [OrderOutcome.of(o) for o in result.orders]
    summary.fills = [_fill_row(f, pd.Timestamp(f.timestamp).tz_convert("UTC")) for f in result.fills]
    summary.final_equity = float(result.final_value)
    summary.final_cash = float(result.cash_curve.iloc[-1]) if len(result.cash_curve) else math.nan
    summary.errors = [str(e.get("error", e)) for e in result.errors]
    return summary


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not condition():
        if time.monotonic() >= deadline:
            raise GatewayError(f"parity run: timed out after {timeout:g}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _build(spec: ParityStrategy, watch: Watch, *, skip_first: bool) -> Strategy:
    """A fresh instance of ``spec``'s strategy reporting to ``watch`` (no state shared between the runs)."""
    cls = after_first_bar(spec.strategy_class, watch) if skip_first else watched(spec.strategy_class, watch)
    strategy = cls(**copy.deepcopy(dict(spec.kwargs)))
    if spec.name is not None:
        strategy.name = spec.name
    return strategy


def _merged(watches: Sequence[Watch]) -> tuple[int, list[StrategyFailure]]:
    """The account's bars and strategy errors: the most bars any strategy was handed, every failure."""
    return max(w.bars for w in watches), [f for w in watches for f in w.failures]


def _backtest_run(
    specs: Sequence[ParityStrategy],
    feed: IDataFeed,
    names: list[str],
    stamps: pd.DatetimeIndex,
    *,
    first: pd.Timestamp,
    last: pd.Timestamp,
    capital: float,
    commission: CommissionModel,
    slippage: SlippageModel,
    interval: str,
    volume_limit: float | None,
) -> tuple[RunSummary, dict[str, RunSummary]]:
    """The backtest of every strategy on one account: the account's summary and each strategy's."""
    engine = BacktestEngine(
        initial_capital=capital,
        data_provider=feed,
        commission=commission,
        slippage=slippage,
        interval=interval,
        volume_limit=volume_limit,
        max_logged_errors=1,  # one traceback, not one per bar; the report counts them all
    )
    watches = [Watch(stamps) for _ in specs]
    for spec, watch in zip(specs, watches, strict=True):
        engine.add_strategy(_build(spec, watch, skip_first=True), capital=spec.capital)
    result = engine.run(first, last, names)
    account = _backtest_summary(result, *_merged(watches))
    parts = {
        spec.label: _backtest_summary(result.strategies.get(spec.label, result), watch.bars, watch.failures)
        for spec, watch in zip(specs, watches, strict=True)
    }
    return account, parts


def _live_run(
    specs: Sequence[ParityStrategy],
    frames: Mapping[str, pd.DataFrame],
    stamps: pd.DatetimeIndex,
    *,
    capital: float,
    commission: CommissionModel,
    slippage: SlippageModel,
    interval: str,
    step_timeout: float,
    volume_limit: float | None,
) -> tuple[RunSummary, dict[str, RunSummary]]:
    symbols = sorted(frames)
    config = GatewayConfig(
        port=0,
        data=_ReplayFeed(frames),
        symbols=symbols,
        cash=capital,
        bar_interval=interval,
        # At the first bar's close: that bar is the live engine's history (IB serves no empty history).
        start=stamps[0],
        commission=commission,
        slippage=slippage,
        volume_limit=volume_limit,
    )
    summary = RunSummary("live")
    watches = [Watch(stamps) for _ in specs]
    # A journal of its own: the run must not resume (or pollute) the user's journal of the paper account.
    with (
        GatewayServer(config) as gateway,
        tempfile.TemporaryDirectory(prefix="cq-parity-") as scratch,
    ):
        engine = LiveStrategyEngine(
            paper_trading=True,
            host="127.0.0.1",
            port=gateway.port,
            client_id=_LIVE_CLIENT_ID,
            update_interval=0.05,
            enable_reconnect=False,
            fill_timeout=0.0,
            stale_after=None,
            # The backtest cancels what still works when the data ends; stop() does the same live.
            cancel_on_stop=True,
            journal=f"{scratch}/journal.sqlite",
            max_logged_errors=1,  # one traceback, as for the backtest; the rest are counted (and at DEBUG)
        )
        # Orders rest until the next bar; never block the worker waiting for them to fill.
        engine.broker.ack_timeout = 0.0
        for spec, watch in zip(specs, watches, strict=True):
            engine.add_strategy(_build(spec, watch, skip_first=False), capital=spec.capital)
        try:
            if not engine.connect(timeout=10, retry_count=1):
                raise GatewayError(
                    f"parity run: could not connect to the simulated gateway on {gateway.port}"
                )
            lookback = max(1, (stamps[-1] - stamps[0]).days + 2)
            if not engine.start(symbols, lookback_days=lookback, data_interval=interval):
                raise GatewayError(f"parity run: the live engine did not start: {list(engine.errors)}")
            broker = gateway.broker

            def sent() -> int:
                return sum(1 for r in engine.broker.tracker.records() if r.ib_order_id)

            def gateway_orders() -> int:
                return int(
                    gateway.call(
                        lambda: (
                            len(broker.open_orders(_LIVE_CLIENT_ID))
                            + len(broker.completed_orders(_LIVE_CLIENT_ID))
                        )
                    )
                )

            def cancels_confirmed() -> bool:
                # a cancel IB refused (the order had filled) ends with the order's fill: done as well
                return all(r.is_done for r in engine.broker.tracker.records() if r.cancel_requested)

            def modifications_answered() -> bool:
                # a modification (strategy.modify) is in force before the next bar, as in the backtest
                return all(r.modifying is None or r.is_done for r in engine.broker.tracker.records())

            def gateway_fills() -> int:
                return int(gateway.call(lambda: len(broker.executions(_LIVE_CLIENT_ID))))

            # a pair's bars have no trades: the live engine takes one as final once IB's clock is past its
            # close by its settle margin, so with pairs time passes after each close, as at IB (only then:
            # an immediate fill would otherwise be stamped after the close it happened at)
            quotes_only = any(InstrumentRegistry().resolve(s).kind is AssetClass.FOREX for s in frames)
            settle = _SETTLE_SECONDS if quotes_only else 0.0
            for stamp in stamps[1:]:
                gateway.clock.step(then_idle=settle)

                def processed(s: pd.Timestamp = stamp) -> bool:
                    last = engine._last_bar
                    return last is not None and last >= s

                _wait_until(
                    processed,
                    step_timeout,
                    f"the live engine to process the bar of {stamp}",
                )
                _wait_until(
                    lambda: gateway_orders() >= sent(), step_timeout, "the gateway to acknowledge orders"
                )
                _wait_until(cancels_confirmed, step_timeout, "the gateway to confirm the strategy's cancels")
                _wait_until(
                    modifications_answered, step_timeout, "the gateway to answer the strategy's modifications"
                )
                _wait_until(
                    lambda: len(engine.fills) >= gateway_fills(), step_timeout, "fills to reach the strategy"
                )
            engine.stop()
            _wait_until(
                lambda: all(r.is_done for r in engine.broker.tracker.records() if r.ib_order_id),
                step_timeout,
                "the orders still working at the end to be cancelled",
            )
            executions = gateway.call(lambda: list(broker.executions(_LIVE_CLIENT_ID)))
            exec_bar = {e.exec_id: bar_of(e.time, stamps) for e in executions}
            summary.fills = [
                _fill_row(f, exec_bar.get(f.fill_id or "", bar_of(f.timestamp, stamps))) for f in engine.fills
            ]
            records = engine.broker.tracker.records()
            summary.orders = [_order_row(r.order) for r in records]
            summary.outcomes = [OrderOutcome.of(r.order) for r in records]
            summary.final_equity = float(gateway.call(lambda: broker.account.net_liquidation))
            # every currency's balance in USD (forex trades hold EUR too), as the backtest's cash curve
            summary.final_cash = float(gateway.call(lambda: broker.account.total_cash_value))
            summary.errors = [str(e["error"]) for e in list(engine.errors)]
            summary.bars_given, summary.strategy_errors = _merged(watches)
            parts = _live_parts(engine, watches, summary.fills, records)
        finally:
            engine.disconnect()
    return summary, parts


def _live_parts(
    engine: LiveStrategyEngine,
    watches: Sequence[Watch],
    fill_rows: list[tuple[Any, ...]],
    records: Sequence[Any],
) -> dict[str, RunSummary]:
    """Each strategy's share of the live run: the orders it returned and their fills."""
    mine_of = [{id(o) for o in watch.orders} for watch in watches]
    books = engine.get_performance_summary()["strategies"]
    parts: dict[str, RunSummary] = {}
    for k, (slot, watch) in enumerate(zip(engine.strategy_slots, watches, strict=True)):
        ids = mine_of[k]
        mine = [r for r in records if id(r.order) in ids]
        part = RunSummary("live", bars_given=watch.bars, strategy_errors=list(watch.failures))
        part.orders = [_order_row(r.order) for r in mine]
        part.outcomes = [OrderOutcome.of(r.order) for r in mine]
        part.fills = [row for row, f in zip(fill_rows, engine.fills, strict=True) if id(f.order) in ids]
        part.final_equity = float(books[slot.name]["equity"])
        part.final_cash = float(slot.book.cash)
        part.errors = [str(e["error"]) for e in list(engine.errors) if e.get("strategy") == slot.name]
        parts[slot.name] = part
    return parts


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
    spread: SpreadModel | str | int | None = None,
) -> ParityReport:
    """Run ``strategy_class(**strategy_kwargs)`` in a backtest and live on the same bars; compare them.

    ``data`` is a data spec (``'sample'``, ``'synthetic'``, ``'csv:DIR'``, ``'store'``) or an
    :class:`IDataFeed`. ``commission``/``slippage`` take a rate or a model, as ``BacktestEngine`` does;
    the same model objects serve both runs. ``volume_limit`` (a fraction of each bar's volume, see
    :mod:`copilot_quant.backtest.participation`) applies to both: the backtest engine and the gateway.
    ``spread`` (a :class:`~copilot_quant.model.spread.SpreadModel`, ticks or ``'5bps'``; off by default)
    makes market orders and triggered stops fill at the touch on both sides. Bars are put on the tick
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
    spread: SpreadModel | str | int | None = None,
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
    slip = with_spread(slippage_model(slippage), spread_model(spread))
    frames, first, last = _bar_frames(provider, names, start, end, interval)
    stamps = pd.DatetimeIndex(sorted(set().union(*(f.index for f in frames.values()))))
    options: dict[str, Any] = {
        "capital": capital,
        "commission": cost,
        "slippage": slip,
        "interval": interval,
        "volume_limit": volume_limit,
    }
    backtest, backtest_parts = _backtest_run(
        strategies, _ReplayFeed(frames), names, stamps, first=first, last=last, **options
    )
    log.info(
        "parity: backtest done (%d orders, %d fills); starting the live run",
        len(backtest.orders),
        len(backtest.fills),
    )
    live, live_parts = _live_run(strategies, frames, stamps, step_timeout=step_timeout, **options)

    def report(name: str, b: RunSummary, lv: RunSummary) -> ParityReport:
        return ParityReport(name, names, first, last, len(stamps), b, lv, _compare(b, lv))

    labels = [s.label for s in strategies]
    return AccountParityReport(
        account=report(" + ".join(labels), backtest, live),
        strategies={k: report(k, backtest_parts[k], live_parts[k]) for k in labels},
    )
