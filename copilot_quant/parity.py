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
   strategy requested (``strategy.cancel``, in force before the next bar as in the backtest), and every
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
from typing import Any, cast

import pandas as pd

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
from copilot_quant.backtest.strategy import FastStrategy, Strategy
from copilot_quant.data.dates import resolve_range, slice_range
from copilot_quant.data.providers import provider_from_spec
from copilot_quant.errors import ConfigError, DataError, GatewayError
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from copilot_quant.model.spread import SpreadModel, grid_frame, spread_model, with_spread
from copilot_quant.parity_report import (
    BAR_HOOKS,
    FILL_COLUMNS,
    ORDER_COLUMNS,
    ParityReport,
    RunSummary,
    StrategyFailure,
)

__all__ = [
    "BAR_HOOKS",
    "FILL_COLUMNS",
    "ORDER_COLUMNS",
    "ParityReport",
    "RunSummary",
    "StrategyFailure",
    "run_parity",
]

log = logging.getLogger(__name__)

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
        # on the tick grid, as the gateway prints them: both runs then walk the same prices
        frames[symbol] = grid_frame(frame[["Open", "High", "Low", "Close", "Volume"]].astype(float))
    first = min(f.index[0] for f in frames.values())
    last = max(f.index[-1] for f in frames.values())
    return frames, first, last


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


def _bar_of(instant: datetime, stamps: pd.DatetimeIndex) -> pd.Timestamp:
    """The stamp (close) of the bar whose price path contains ``instant``: the first stamp >= it."""
    ts = pd.Timestamp(instant)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    i = int(stamps.searchsorted(ts, side="left"))
    return stamps[min(i, len(stamps) - 1)]


class _Watch:
    """What one run's strategy instance did at its boundary: the bars it was handed and what it raised.

    Filled by the class :func:`_watched` makes, on the thread that calls the strategy (the engine's one
    worker thread, live). ``on_bar`` called from ``on_data`` (a ``FastStrategy`` live) is the same bar:
    counted once, and its exception recorded once. Used as ``with watch.hook(...)``, so the wrapper adds
    one frame to a strategy's traceback, not more.
    """

    def __init__(self, stamps: pd.DatetimeIndex | None = None) -> None:
        self.stamps = stamps
        #: Skip the next bar (the range's first, history in the live run): set by :func:`_after_first_bar`.
        self.skip_first_bar = False
        self.bars = 0
        self.failures: list[StrategyFailure] = []
        self._active: list[tuple[str, pd.Timestamp | None]] = []
        self._next: tuple[str, pd.Timestamp | None] = ("", None)
        self._last_bar: pd.Timestamp | None = None

    def skips(self) -> bool:
        """Whether to skip this bar hook call (the first bar, when :attr:`skip_first_bar`)."""
        if self._active or not self.skip_first_bar:
            return False
        self.skip_first_bar = False
        return True

    def bar_hook(self, hook: str, timestamp: datetime) -> _Watch:
        """The context of an ``on_data``/``on_bar`` call: counts the bar (once) and records an exception."""
        bar = _utc(timestamp)
        if not self._active:
            self.bars += 1
            self._last_bar = bar
        return self.hook(hook, bar)

    def hook(self, hook: str, bar: pd.Timestamp | None) -> _Watch:
        """The context of any other hook call (``bar`` ``None``: outside any bar)."""
        self._next = (hook, bar)
        return self

    def bar_of(self, fill: Fill) -> pd.Timestamp | None:
        if fill.timestamp is None or self.stamps is None or len(self.stamps) == 0:
            return self._last_bar
        return _bar_of(fill.timestamp, self.stamps)

    def __enter__(self) -> None:
        self._active.append(self._next)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        hook, bar = self._active.pop()
        if isinstance(exc, Exception) and not self._active:  # the engine records it and carries on
            self.failures.append(StrategyFailure(bar, hook, f"{type(exc).__name__}: {exc}"))


def _watched(strategy_class: type[Strategy], watch: _Watch) -> type[Strategy]:
    """``strategy_class`` with its hooks reporting to ``watch`` (exceptions still reach the engine)."""

    class Watched(strategy_class):  # type: ignore[valid-type,misc]
        def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
            if watch.skips():
                return None
            with watch.bar_hook("on_data", timestamp):
                return cast("list[Order] | None", super().on_data(timestamp, data))

        if issubclass(strategy_class, FastStrategy):  # the backtest engine calls on_bar, not on_data

            def on_bar(self, timestamp: datetime, *values: float) -> list[Order] | None:
                if watch.skips():
                    return None
                with watch.bar_hook("on_bar", timestamp):
                    return cast("list[Order] | None", super().on_bar(timestamp, *values))

        def on_fill(self, fill: Fill) -> None:
            with watch.hook("on_fill", watch.bar_of(fill)):
                super().on_fill(fill)

        def on_stop(self) -> None:
            with watch.hook("on_stop", None):
                super().on_stop()

        def finalize(self) -> None:
            with watch.hook("finalize", None):
                super().finalize()

    Watched.__name__ = Watched.__qualname__ = strategy_class.__name__
    return Watched


def _after_first_bar(strategy_class: type[Strategy], watch: _Watch | None = None) -> type[Strategy]:
    """``strategy_class`` whose ``on_data`` (``on_bar``) skips the range's first bar, which is history live.

    Live, the engine needs at least one completed bar before it starts (IB returns error 162 for an empty
    history request), and it hands the strategy only bars completed after ``start()``. The backtest gets
    the same treatment so both runs call ``on_data`` on exactly the same bars with the same windows. Make
    one instance per class: the skipping is kept in ``watch`` (a fresh one when not given).
    """
    watch = watch if watch is not None else _Watch()
    watch.skip_first_bar = True
    return _watched(strategy_class, watch)


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _backtest_summary(result: BacktestResult, watch: _Watch) -> RunSummary:
    failures = list(watch.failures)
    engine_first = result.errors[0] if result.errors else None
    if failures and engine_first is not None and engine_first.get("timestamp") is not None:
        first = failures[0]
        if engine_first.get("hook") == first.hook and _utc(engine_first["timestamp"]) == first.bar:
            # the same exception: the engine's text adds what to do (e.g. the MultiIndex-columns hint)
            failures[0] = replace(first, error=f"{engine_first.get('type')}: {engine_first.get('error')}")
    summary = RunSummary("backtest", bars_given=watch.bars, strategy_errors=failures)
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


def _live_run(
    strategy_class: type[Strategy],
    strategy_kwargs: Mapping[str, Any],
    frames: Mapping[str, pd.DataFrame],
    stamps: pd.DatetimeIndex,
    *,
    capital: float,
    commission: CommissionModel,
    slippage: SlippageModel,
    interval: str,
    step_timeout: float,
    volume_limit: float | None,
) -> RunSummary:
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
    watch = _Watch(stamps)
    strategy = _watched(strategy_class, watch)(**copy.deepcopy(dict(strategy_kwargs)))
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
        engine.add_strategy(strategy)
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

            def gateway_fills() -> int:
                return int(gateway.call(lambda: len(broker.executions(_LIVE_CLIENT_ID))))

            for stamp in stamps[1:]:
                gateway.clock.step()

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
                    lambda: len(engine.fills) >= gateway_fills(), step_timeout, "fills to reach the strategy"
                )
            engine.stop()
            _wait_until(
                lambda: all(r.is_done for r in engine.broker.tracker.records() if r.ib_order_id),
                step_timeout,
                "the orders still working at the end to be cancelled",
            )
            executions = gateway.call(lambda: list(broker.executions(_LIVE_CLIENT_ID)))
            exec_bar = {e.exec_id: _bar_of(e.time, stamps) for e in executions}
            summary.fills = [
                _fill_row(f, exec_bar.get(f.fill_id or "", _bar_of(f.timestamp, stamps)))
                for f in engine.fills
            ]
            records = engine.broker.tracker.records()
            summary.orders = [_order_row(r.order) for r in records]
            summary.outcomes = [OrderOutcome.of(r.order) for r in records]
            summary.final_equity = float(gateway.call(lambda: broker.account.net_liquidation))
            summary.final_cash = float(gateway.call(lambda: broker.account.cash))
            summary.errors = [str(e["error"]) for e in list(engine.errors)]
            summary.bars_given = watch.bars
            summary.strategy_errors = list(watch.failures)
        finally:
            engine.disconnect()
    return summary


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
    if isinstance(symbols, str):
        symbols = [symbols]
    names = [s.strip().upper() for s in symbols if s.strip()]
    if not names:
        raise ConfigError("run_parity needs at least one symbol, e.g. symbols=['AAPL']")
    if not (isinstance(strategy_class, type) and issubclass(strategy_class, Strategy)):
        raise ConfigError(f"strategy_class must be a Strategy subclass, got {strategy_class!r}")
    if not capital > 0:
        raise ConfigError(f"capital must be positive, got {capital}")
    volume_limit = check_volume_limit(volume_limit)
    kwargs = dict(strategy_kwargs or {})
    provider = provider_from_spec(data) if isinstance(data, str) else data
    cost = commission_model(commission)
    slip = with_spread(slippage_model(slippage), spread_model(spread))
    frames, first, last = _bar_frames(provider, names, start, end, interval)
    feed = _ReplayFeed(frames)
    stamps = pd.DatetimeIndex(sorted(set().union(*(f.index for f in frames.values()))))

    engine = BacktestEngine(
        initial_capital=capital,
        data_provider=feed,
        commission=cost,
        slippage=slip,
        interval=interval,
        volume_limit=volume_limit,
        max_logged_errors=1,  # one traceback, not one per bar; the report counts them all
    )
    watch = _Watch(stamps)
    engine.add_strategy(_after_first_bar(strategy_class, watch)(**copy.deepcopy(kwargs)))  # no shared state
    result = engine.run(first, last, names)
    backtest = _backtest_summary(result, watch)
    log.info(
        "parity: backtest done (%d orders, %d fills); starting the live run",
        len(backtest.orders),
        len(backtest.fills),
    )

    live = _live_run(
        strategy_class,
        kwargs,
        frames,
        stamps,
        capital=capital,
        commission=cost,
        slippage=slip,
        interval=interval,
        step_timeout=step_timeout,
        volume_limit=volume_limit,
    )
    diffs = _compare(backtest, live)
    return ParityReport(
        strategy=strategy_class.__name__,
        symbols=names,
        start=first,
        end=last,
        bars=len(stamps),
        backtest=backtest,
        live=live,
        diffs=diffs,
    )
