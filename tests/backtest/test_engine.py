"""BacktestEngine: timing model, order lifecycle, accounting, hooks, errors and data shapes."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.errors import ConfigError, DataError, StrategyError

from tests.backtest.engine_helpers import FrameFeed, Scripted, daily_bars, flat_bars

BARS = daily_bars(
    [
        (10.0, 10.5, 9.5, 10.2),
        (10.4, 11.0, 10.1, 10.8),
        (11.0, 11.6, 10.9, 11.5),
        (11.2, 11.4, 10.0, 10.3),
        (10.1, 10.6, 9.8, 10.5),
        (10.6, 12.0, 10.4, 11.9),
    ]
)


def run(strategy, bars=BARS, symbols=("X",), **engine_kwargs):
    engine_kwargs.setdefault("commission", 0.0)
    engine_kwargs.setdefault("slippage", 0.0)
    # the bars' own prices (spread off): these tests do the fill arithmetic by hand; the spread's own tests
    # are tests/model/test_spread*.py and tests/backtest/test_spread_fills.py
    engine_kwargs.setdefault("spread", None)
    engine = BacktestEngine(100_000, **engine_kwargs)
    engine.add_strategy(strategy)
    return engine, engine.run(data=bars, symbols=list(symbols))


class TestTiming:
    def test_a_market_order_from_bar_t_fills_at_the_next_open_with_slippage(self):
        strategy = Scripted({1: lambda: [Order("X", 10)]})
        _, result = run(strategy, slippage=0.001)
        (fill,) = result.fills
        assert fill.fill_price == pytest.approx(11.0 * 1.001)  # bar 2's open
        assert fill.timestamp == BARS.index[2]
        assert strategy.fills == [fill]

    def test_fill_at_close_fills_at_the_signal_bars_close(self):
        strategy = Scripted({1: lambda: [Order("X", 10)]})
        _, result = run(strategy, fill_at="close")
        (fill,) = result.fills
        assert fill.fill_price == 10.8
        assert fill.timestamp == BARS.index[1]

    def test_an_unknown_fill_at_is_a_config_error(self):
        with pytest.raises(ConfigError, match="fill_at"):
            BacktestEngine(fill_at="same_bar")

    def test_the_strategy_sees_each_bar_once_in_order_and_only_the_past(self):
        strategy = Scripted()
        run(strategy)
        assert [ts for ts, _ in strategy.calls] == list(BARS.index)
        assert [n for _, n in strategy.calls] == list(range(1, len(BARS) + 1))

    def test_an_order_returned_on_the_last_bar_is_cancelled_not_lost(self):
        strategy = Scripted({5: lambda: [Order("X", 10)]})
        _, result = run(strategy)
        assert result.fills == []
        (order,) = result.orders
        assert order.status is OrderStatus.CANCELLED
        assert "ended" in order.reject_reason


class TestOrderTypes:
    def test_a_buy_limit_fills_at_the_limit_when_touched(self):
        _, result = run(Scripted({0: lambda: [Order("X", 1, "limit", limit_price=10.6)]}))
        assert [f.fill_price for f in result.fills] == [10.4]  # bar 1 opens at 10.4 < 10.6: gap fill

    def test_a_buy_limit_inside_the_range_fills_exactly_at_the_limit(self):
        _, result = run(Scripted({0: lambda: [Order("X", 1, "limit", limit_price=10.2)]}), slippage=0.01)
        assert [f.fill_price for f in result.fills] == [10.2]

    def test_a_day_limit_expires_after_its_session(self):
        strategy = Scripted({0: lambda: [Order("X", 1, "limit", limit_price=9.9)]})
        _, result = run(strategy)
        (order,) = result.orders
        assert order.status is OrderStatus.EXPIRED  # bar 1's low is 10.1; bar 4 would have filled it
        assert result.fills == []

    def test_a_gtc_limit_keeps_working_until_it_fills(self):
        strategy = Scripted({0: lambda: [Order("X", 1, "limit", limit_price=9.9, time_in_force="gtc")]})
        _, result = run(strategy)
        (fill,) = result.fills
        assert (fill.fill_price, fill.timestamp) == (9.9, BARS.index[4])

    def test_a_sell_stop_fills_at_the_stop_or_the_gap_open(self):
        def orders():
            return [Order("X", 5), Order("X", 5, "stop", "sell", stop_price=10.5, time_in_force="gtc")]

        _, result = run(Scripted({1: orders}))
        buy, stop = result.fills
        assert buy.fill_price == 11.0
        assert stop.fill_price == 10.5  # bar 3 falls from 11.4 to 10.0 through 10.5
        assert stop.timestamp == BARS.index[3]

    def test_a_stop_limit_triggers_then_waits_as_a_limit(self):
        # buy stop 11.5 limit 11.1: bar 2 triggers (high 11.6) but never comes back to 11.1 after the trigger;
        # bar 3 opens at 11.2 and falls to 10.0, so the working limit fills at 11.1
        order = Order("X", 1, "stop_limit", stop_price=11.5, limit_price=11.1, time_in_force="gtc")
        _, result = run(Scripted({1: lambda: [order]}))
        (fill,) = result.fills
        assert (fill.fill_price, fill.timestamp) == (11.1, BARS.index[3])

    def test_intraday_day_orders_expire_at_the_session_end_not_after_one_bar(self):
        minutes = pd.DatetimeIndex(
            [
                "2024-01-02 20:58",
                "2024-01-02 20:59",
                "2024-01-02 21:00",
                "2024-01-03 14:31",
                "2024-01-03 14:32",
            ],
            tz="UTC",
        )
        bars = pd.DataFrame(
            {
                "Open": [10, 10, 10, 10, 9],
                "High": [10, 10, 10, 10, 9],
                "Low": [10, 10, 10, 10, 9],
                "Close": [10, 10, 10, 10, 9],
                "Volume": 1.0,
            },
            index=minutes,
            dtype=float,
        )
        early = Order("X", 1, "limit", limit_price=9.5)  # works bars 1-2, expires at 21:00
        late = Order("X", 1, "limit", limit_price=9.5)  # sent at the close: works the next session
        _, result = run(Scripted({0: lambda: [early], 2: lambda: [late]}), bars=bars)
        assert early.status is OrderStatus.EXPIRED
        assert late.status is OrderStatus.FILLED
        assert result.fills[0].timestamp == minutes[4]


class TestAccounting:
    def test_the_equity_curve_is_dated_utc_and_includes_the_last_bars_fills(self):
        strategy = Scripted({4: lambda: [Order("X", 100)]})
        _, result = run(strategy, commission=0.001)
        curve = result.equity_curve
        assert isinstance(curve.index, pd.DatetimeIndex)
        assert str(curve.index.tz) == "UTC"
        assert list(curve.index) == list(BARS.index)
        (fill,) = result.fills
        expected = (
            100_000 - 100 * 10.6 - fill.commission + 100 * 11.9
        )  # filled at bar 5's open, marked at its close
        assert curve.iloc[-1] == pytest.approx(expected)
        assert result.final_value == pytest.approx(expected)
        assert result.cash_curve.iloc[-1] == pytest.approx(100_000 - 1060 - fill.commission)

    def test_a_short_sale_does_not_create_equity(self):
        bars = flat_bars([100.0] * 5)
        _, result = run(Scripted({1: lambda: [Order("X", 10, side="sell")]}), bars=bars)
        assert np.allclose(result.equity_curve.to_numpy(), 100_000)
        assert result.positions["X"].market_value == pytest.approx(-1_000)

    def test_an_unaffordable_buy_is_rejected_and_reported(self):
        strategy = Scripted({0: lambda: [Order("X", 100_000)]})
        _, result = run(strategy)
        (order,) = result.orders
        assert order.status is OrderStatus.REJECTED
        assert "insufficient cash" in order.reject_reason
        assert result.fills == []
        assert strategy.fills == []

    def test_shorts_can_be_refused(self):
        _, result = run(Scripted({0: lambda: [Order("X", 1, side="sell")]}), allow_short=False)
        assert result.orders[0].status is OrderStatus.REJECTED

    def test_an_order_for_a_symbol_without_data_is_rejected_with_a_reason(self):
        _, result = run(Scripted({0: lambda: [Order("MSFT", 1)]}))
        (order,) = result.orders
        assert order.status is OrderStatus.REJECTED
        assert "no price data for MSFT" in order.reject_reason

    def test_account_views_during_and_after_the_run(self):
        seen = []

        class Watcher(Strategy):
            def on_data(self, timestamp, data):
                seen.append((self.position("X"), self.cash, self.equity))
                return [Order("X", 10)] if len(data) == 1 else None

        engine, result = run(Watcher())
        assert seen[0] == (0.0, 100_000, 100_000)
        assert seen[1] == (10, pytest.approx(100_000 - 104), pytest.approx(100_000 - 104 + 108))
        assert engine.get_portfolio_value() == pytest.approx(result.final_value)
        assert engine.get_positions()["X"].unrealized_pnl == pytest.approx(10 * (11.9 - 10.4))

    def test_short_proceeds_cannot_lever_the_account(self):
        """D-B1: $100k once shorted $2.7M of one stock and bought $2.5M of another with the proceeds."""
        feed = FrameFeed({"X": flat_bars([100.0] * 5), "Y": flat_bars([50.0] * 5)})
        engine = BacktestEngine(100_000, feed, commission=0, slippage=0)
        big_short, funded_buy = Order("X", 900, side="sell"), Order("Y", 1_000)
        engine.add_strategy(Scripted({0: lambda: [big_short], 1: lambda: [funded_buy]}))
        result = engine.run("2024-01-01", "2024-01-09", ["X", "Y"])
        assert big_short.status is OrderStatus.FILLED
        assert funded_buy.status is OrderStatus.REJECTED
        assert "insufficient buying power" in funded_buy.reject_reason
        assert result.fills == [result.fills[0]]

    def test_the_margin_check_marks_held_shorts_at_the_last_close(self):
        x = daily_bars([(100, 100, 100, 100), (100, 100, 100, 100), (100, 150, 100, 150)] + [(150,) * 4] * 2)
        feed = FrameFeed({"X": x, "Y": flat_bars([10.0] * 5)})
        engine = BacktestEngine(10_000, feed, commission=0, slippage=0)
        late = Order("Y", 400, side="sell")  # fits with X marked at 100 (5k + 4k <= 10k), not at 150
        engine.add_strategy(Scripted({0: lambda: [Order("X", 50, side="sell")], 2: lambda: [late]}))
        engine.run("2024-01-01", "2024-01-09", ["X", "Y"])
        assert late.status is OrderStatus.REJECTED  # X short worth 7.5k, equity 7.5k

    def test_on_fill_cannot_see_the_close_of_the_bar_it_filled_in(self):
        seen = []

        class Watcher(Strategy):
            def on_data(self, timestamp, data):
                return [Order("X", 10)] if len(data) == 1 else None

            def on_fill(self, fill):
                pos = self.positions["X"]
                seen.append((self.equity, pos.market_value, pos.unrealized_pnl))

        run(Watcher())  # fills at bar 1's open 10.4; bar 1 closes at 10.8
        assert seen == [(pytest.approx(100_000), pytest.approx(104.0), pytest.approx(0.0))]

    def test_a_given_broker_is_used_as_is(self):
        broker = SimpleBroker(5_000, commission=0, slippage=0)
        engine = BacktestEngine(broker=broker)
        engine.add_strategy(Scripted({0: lambda: [Order("X", 10)]}))
        result = engine.run(data=BARS, symbols=["X"])
        assert result.initial_capital == 5_000
        assert broker.get_positions()["X"].quantity == 10


class TestStrategies:
    def test_hooks_run_once_in_order_and_fills_arrive_once_each(self):
        a, b = Order("X", 1), Order("X", 2)
        strategy = Scripted({0: lambda: [a, b]})
        run(strategy)
        assert strategy.events == [
            "initialize",
            "on_start",
            f"fill:{a.order_id}",
            f"fill:{b.order_id}",
            "on_stop",
            "finalize",
        ]

    def test_hooks_run_on_empty_data_too(self):
        strategy = Scripted()
        _, result = run(strategy, bars=BARS.iloc[:0])
        assert strategy.events == ["initialize", "on_start", "on_stop", "finalize"]
        assert result.equity_curve.empty
        assert str(result.equity_curve.index.tz) == "UTC"
        assert result.final_value == 100_000

    def test_fills_go_to_the_strategy_that_placed_the_order(self):
        first = Scripted({0: lambda: [Order("X", 1)]})
        second = Scripted({1: lambda: [Order("X", 2, side="sell")]})
        engine = BacktestEngine(100_000, commission=0, slippage=0)
        engine.add_strategy(first)
        engine.add_strategy(second)
        result = engine.run(data=BARS, symbols=["X"])
        assert [f.fill_quantity for f in first.fills] == [1]
        assert [f.fill_quantity for f in second.fills] == [2]
        assert result.positions["X"].quantity == -1  # one shared account
        assert result.strategy_name == "Scripted + Scripted"

    def test_an_exception_in_on_data_is_recorded_and_the_run_continues(self, caplog):
        class Flaky(Scripted):
            def on_data(self, timestamp, data):
                if len(data) == 2:
                    raise RuntimeError("boom")
                return super().on_data(timestamp, data)

        strategy = Flaky({2: lambda: [Order("X", 1)]})
        with caplog.at_level(logging.ERROR, logger="copilot_quant.backtest.engine"):
            engine, result = run(strategy)
        (error,) = result.errors
        assert error["timestamp"] == BARS.index[1]
        assert (error["error"], error["type"]) == ("boom", "RuntimeError")
        assert engine.total_errors == 1
        assert len(result.fills) == 1  # later bars still trade
        assert "boom" in caplog.text

    def test_returning_something_that_is_not_orders_is_recorded(self):
        class Bad(Strategy):
            def on_data(self, timestamp, data):
                return "buy"

        _, result = run(Bad())
        assert {e["type"] for e in result.errors} == {"StrategyError"}
        assert "list of Order" in result.errors[0]["error"]

    def test_resubmitting_an_order_is_refused(self):
        order = Order("X", 1)
        _, result = run(Scripted({0: lambda: [order], 1: lambda: [order]}))
        assert len(result.fills) == 1
        assert "already submitted" in result.errors[0]["error"]

    def test_an_exception_in_initialize_stops_the_run_with_a_strategy_error(self):
        class Broken(Strategy):
            def initialize(self):
                raise KeyError("fast_period")

            def on_data(self, timestamp, data):
                return None

        with pytest.raises(StrategyError, match=r"Broken\.initialize\(\) failed"):
            run(Broken())

    def test_a_strategy_that_writes_into_its_data_cannot_change_later_bars(self):
        closes = []

        class Vandal(Strategy):
            def on_data(self, timestamp, data):
                closes.append(float(data["Close"].iloc[-1]))
                data.iloc[:, :] = -1.0  # copy-on-write: only its own view changes

        run(Vandal())
        assert closes == list(BARS["Close"])

    def test_run_without_a_strategy_is_a_value_error(self):
        with pytest.raises(ValueError, match="add_strategy"):
            BacktestEngine().run(data=BARS, symbols=["X"])

    def test_add_strategy_needs_a_strategy_instance(self):
        with pytest.raises(StrategyError, match="Strategy instance"):
            BacktestEngine().add_strategy(Scripted)  # type: ignore[arg-type]

    def test_progress_is_reported_up_to_the_total(self):
        calls = []
        engine = BacktestEngine()
        engine.add_strategy(Scripted())
        engine.run(data=BARS, symbols=["X"], progress=lambda done, total: calls.append((done, total)))
        assert calls[-1] == (6, 6)
        assert [d for d, _ in calls] == sorted(d for d, _ in calls)


class TestDataShapes:
    def test_one_symbol_gets_flat_columns(self):
        shapes = []

        class Look(Strategy):
            def on_data(self, timestamp, data):
                shapes.append(("Close" in data.columns, isinstance(data.columns, pd.MultiIndex)))

        run(Look())
        assert set(shapes) == {(True, False)}

    def test_several_symbols_get_metric_symbol_columns_from_the_provider(self):
        feed = FrameFeed({"AAPL": BARS, "MSFT": BARS * 2})
        columns = []

        class Look(Strategy):
            def on_data(self, timestamp, data):
                columns.append(data[("Close", "MSFT")].iloc[-1])

        engine = BacktestEngine(data_provider=feed)
        engine.add_strategy(Look())
        result = engine.run("2024-01-01", "2024-01-09", ["AAPL", "MSFT"])
        assert columns == list(BARS["Close"] * 2)
        assert list(result.prices.columns) == ["AAPL", "MSFT"]

    def test_the_guides_strategy_falls_into_the_multi_symbol_trap_loudly(self):
        """D-B8: with a MultiIndex, 'Close' in data.columns is True and data['Close'] is a frame."""

        class GuideSMA(Strategy):  # the guide's logic, verbatim in the parts that matter
            def initialize(self):
                self.fast_period, self.slow_period, self.position = 2, 3, None

            def on_data(self, timestamp, data):
                orders = []
                if "Close" in data.columns:  # noqa: SIM108 - the guide's code as written
                    close_prices = data["Close"]
                else:
                    close_prices = data[("Close", "AAPL")]
                if len(close_prices) < self.slow_period:
                    return orders
                fast_ma = close_prices.tail(self.fast_period).mean()
                slow_ma = close_prices.tail(self.slow_period).mean()
                if fast_ma > slow_ma and self.position is None:
                    orders.append(Order("AAPL", 10))
                    self.position = "long"
                return orders

        feed = FrameFeed({"AAPL": BARS, "MSFT": BARS})
        engine = BacktestEngine(data_provider=feed)
        engine.add_strategy(GuideSMA())
        result = engine.run("2024-01-01", "2024-01-09", ["AAPL", "MSFT"])
        assert result.fills == []
        assert len(result.errors) == len(BARS) - 2  # every bar once the window is full
        assert "ambiguous" in result.errors[0]["error"]
        assert "data[('Close', 'AAPL')]" in result.errors[0]["error"]

    def test_a_symbol_missing_on_a_bar_expires_a_day_order_and_delays_a_gtc_one(self):
        msft = BARS.drop(BARS.index[2])  # no MSFT bar in the session after the signal
        feed = FrameFeed({"AAPL": BARS, "MSFT": msft})
        engine = BacktestEngine(data_provider=feed, commission=0, slippage=0, spread=None)
        day, gtc = Order("MSFT", 1), Order("MSFT", 2, time_in_force="gtc")
        engine.add_strategy(Scripted({1: lambda: [day, gtc]}))
        result = engine.run("2024-01-01", "2024-01-09", ["AAPL", "MSFT"])
        assert day.status is OrderStatus.EXPIRED
        (fill,) = result.fills
        assert fill.order is gtc
        assert fill.timestamp == BARS.index[3]  # the next bar MSFT has
        assert fill.fill_price == BARS["Open"].iloc[3]

    def test_the_date_range_is_inclusive_and_read_in_new_york_time(self):
        strategy = Scripted()
        engine = BacktestEngine(data_provider=FrameFeed({"X": BARS}))
        engine.add_strategy(strategy)
        result = engine.run("2024-01-03", "2024-01-05", ["X"])
        assert len(strategy.calls) == 3
        assert result.equity_curve.index[0] == BARS.index[1]

    def test_naive_timestamps_are_refused(self):
        engine = BacktestEngine()
        engine.add_strategy(Scripted())
        with pytest.raises(DataError, match="naive"):
            engine.run(data=BARS.tz_localize(None), symbols=["X"])

    def test_unsorted_bars_are_refused(self):
        engine = BacktestEngine()
        engine.add_strategy(Scripted())
        with pytest.raises(DataError, match="not sorted"):
            engine.run(data=BARS.iloc[::-1], symbols=["X"])

    @pytest.mark.parametrize(
        ("row", "match"),
        [
            ((-1.0, 11.0, 9.0, 10.0), "positive"),
            ((10.0, 11.0, 9.0, np.nan), "missing"),
            ((10.0, 9.0, 11.0, 10.0), "High < Low"),
        ],
    )
    def test_bad_prices_are_a_data_error_before_the_run(self, row, match):
        bars = BARS.copy()
        bars.iloc[2, :4] = row
        strategy = Scripted({1: lambda: [Order("X", 1)]})
        engine = BacktestEngine()
        engine.add_strategy(strategy)
        with pytest.raises(DataError, match=match):
            engine.run(data=bars, symbols=["X"])
        assert strategy.calls == []

    def test_no_provider_and_no_data_is_a_config_error(self):
        engine = BacktestEngine()
        engine.add_strategy(Scripted())
        with pytest.raises(ConfigError, match="data_provider"):
            engine.run("2024-01-01", "2024-02-01", ["X"])
