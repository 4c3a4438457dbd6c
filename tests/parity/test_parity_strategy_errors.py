"""Backtest–live parity when the strategy raises: errors are counted per run by bar, compared, and logged
once (one traceback per engine), never hidden behind an "identical" verdict.

Each test runs the real :class:`LiveStrategyEngine` over a socket against an in-process gateway, as in
``test_parity``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

import pandas as pd
import pytest
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import FastStrategy, Strategy
from copilot_quant.parity import run_parity

pytestmark = pytest.mark.timeout(120)

START, END = "2010-01-01", "2010-02-26"  # 39 bars of sample AAPL: 38 handed to the strategy


class RaisesEveryThirdBar(Strategy):
    """Buys and sells 10 shares in turn; raises in on_data on every third bar and in every second on_fill."""

    def initialize(self) -> None:
        self.bar = 0
        self.fills = 0
        self.held = 0.0

    def on_fill(self, fill: Fill) -> None:
        self.fills += 1
        self.held += fill.signed_quantity
        if self.fills % 2 == 0:
            raise RuntimeError(f"on_fill trouble #{self.fills}")

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        self.bar += 1
        if self.bar % 3 == 0:
            raise ValueError(f"bad bar {self.bar}")
        return [Order("AAPL", 10, "market", "sell" if self.held else "buy")] if self.bar % 4 == 1 else []


class AlwaysRaises(Strategy):
    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        raise ValueError("nothing works")


class RaisesOnlyLive(Strategy):
    """Its second instance (the live run's) raises on every fifth bar; orders are the same in both runs."""

    made = 0

    def initialize(self) -> None:
        RaisesOnlyLive.made += 1
        self.live = RaisesOnlyLive.made % 2 == 0
        self.bar = 0

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        self.bar += 1
        if self.live and self.bar % 5 == 0:
            raise ValueError("only live")
        return []


class FastRaiser(FastStrategy):
    """A FastStrategy: the backtest calls on_bar, the live engine on_data, which calls on_bar."""

    def initialize(self) -> None:
        self.bar = 0

    def indicators(self, data: pd.DataFrame) -> Mapping[str, pd.Series]:
        return {"close": data["Close"]}

    def on_bar(self, timestamp: datetime, *values: float) -> list[Order] | None:
        self.bar += 1
        if self.bar % 4 == 0:
            raise ValueError(f"fast bar {self.bar}")
        return None


def test_errors_on_some_bars_are_counted_by_bar_and_agree_between_the_runs() -> None:
    report = run_parity(RaisesEveryThirdBar, "AAPL", START, END)
    assert report.ok, report.diffs.to_string()
    assert report.strategy_raised
    assert not report.every_bar_errored
    backtest, live = report.backtest, report.live
    assert backtest.bars_given == live.bars_given == report.bars - 1  # the first bar is history
    assert len(backtest.fills) >= 4  # it traded, so on_fill raised too
    hooks = {f.hook for f in backtest.strategy_errors}
    assert hooks == {"on_data", "on_fill"}
    # the same failures at the same bars: an on_fill error belongs to the bar its fill happened in
    assert [(f.bar, f.hook) for f in backtest.strategy_errors] == [
        (f.bar, f.hook) for f in live.strategy_errors
    ]
    assert backtest.errored_bars == live.errored_bars < backtest.bars_given
    on_data = [f for f in live.strategy_errors if f.hook == "on_data"]
    assert len(on_data) == backtest.bars_given // 3
    assert on_data[0].error == "ValueError: bad bar 3"


def test_a_strategy_that_raises_on_every_bar_is_identical_but_flagged() -> None:
    report = run_parity(AlwaysRaises, "AAPL", START, END)
    assert report.ok  # no orders on either side: nothing differs ...
    assert report.every_bar_errored  # ... and nothing was tested
    assert report.backtest.every_bar_errored
    assert report.live.every_bar_errored
    assert report.live.errored_bars == report.bars - 1
    assert report.live.strategy_errors[0].error == "ValueError: nothing works"


def test_a_strategy_that_raises_only_live_is_a_difference() -> None:
    report = run_parity(RaisesOnlyLive, "AAPL", START, END)
    assert not report.ok
    errors = report.diffs[report.diffs["kind"] == "errors"].set_index("field")
    assert errors.loc["strategy_errors", "backtest"] == 0
    assert errors.loc["strategy_errors", "live"] == (report.bars - 1) // 5
    assert errors.loc["errored_bars", "live"] == (report.bars - 1) // 5
    assert pd.isna(errors.loc["first_error_bar", "backtest"])  # no error in the backtest
    assert errors.loc["first_error_bar", "live"] == report.live.strategy_errors[0].bar


def test_a_fast_strategy_is_counted_once_per_bar_in_both_runs() -> None:
    report = run_parity(FastRaiser, "AAPL", START, END)
    assert report.ok, report.diffs.to_string()
    assert report.backtest.bars_given == report.live.bars_given == report.bars - 1
    assert len(report.live.strategy_errors) == (report.bars - 1) // 4  # on_bar inside on_data: once
    assert [f.hook for f in report.live.strategy_errors] == ["on_data"] * len(report.live.strategy_errors)
    assert [f.bar for f in report.backtest.strategy_errors] == [f.bar for f in report.live.strategy_errors]


class FastRaiserValuesOnly(FastRaiser):
    """:class:`FastRaiser` asking for its values only (``bar_timestamps = False``)."""

    bar_timestamps = False

    def on_bar(self, *values: float) -> list[Order] | None:  # type: ignore[override]
        assert len(values) == 1  # the close only: the watch leaves the time it needs out
        return super().on_bar(None, *values)  # type: ignore[arg-type]


def test_a_fast_strategy_without_bar_timestamps_has_its_errors_at_the_right_bars() -> None:
    """The parity watch needs each bar's time even when the strategy does not: before, the wrapper took the
    first value for the time, and the backtest's failures were dated from a price (in 1970)."""
    report = run_parity(FastRaiserValuesOnly, "AAPL", START, END)
    assert report.ok, report.diffs.to_string()
    bars = [f.bar for f in report.backtest.strategy_errors]
    assert len(bars) == (report.bars - 1) // 4
    assert bars == [f.bar for f in report.live.strategy_errors]
    assert all(bar is not None and bar >= pd.Timestamp(START, tz="UTC") for bar in bars)


def test_each_engine_logs_one_traceback_not_one_per_bar(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        report = run_parity(AlwaysRaises, "AAPL", START, END)
    assert report.live.errored_bars == report.bars - 1 > 30
    tracebacks = [r for r in caplog.records if r.exc_info and r.name.startswith("copilot_quant.")]
    assert sorted(r.name for r in tracebacks) == [
        "copilot_quant.backtest.engine",
        "copilot_quant.live.events",
    ]
    live_records = [r for r in caplog.records if r.name == "copilot_quant.live.events"]
    assert len(live_records) <= 2  # the first error's summary line and its traceback (max_logged_errors=1)


def test_the_rest_of_the_live_errors_are_debug_records(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="copilot_quant.live.events"):
        report = run_parity(AlwaysRaises, "AAPL", START, "2010-01-20")
    failures = [
        r for r in caplog.records if r.name == "copilot_quant.live.events" and "failed in" in r.getMessage()
    ]
    assert len(failures) == report.live.errored_bars  # every one is there for -vv ...
    assert [r.levelno for r in failures[1:]] == [logging.DEBUG] * (len(failures) - 1)
    assert not any(r.exc_info for r in failures[1:])  # ... without a traceback each


class GuideTrap(Strategy):
    """The guide's single-symbol habit on two symbols: ``data['Close']`` is a frame, its truth ambiguous."""

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        if data["Close"].iloc[-1] > 0:
            return []
        return []


def test_the_first_backtest_error_keeps_the_engines_hint() -> None:
    report = run_parity(GuideTrap, ["AAPL", "MSFT"], START, "2010-01-20")
    assert report.ok
    assert report.every_bar_errored
    assert "MultiIndex columns" in report.backtest.strategy_errors[0].error  # what to do about it
    assert report.live.strategy_errors[0].error.startswith("ValueError: The truth value of a Series")
