"""The bundled SMA crossover examples: both data shapes, missing bars, parameters, real sample data."""

from __future__ import annotations

import pandas as pd
import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.interfaces import combine_symbols
from copilot_quant.data.providers import SampleDataProvider, SyntheticDataProvider
from copilot_quant.errors import ConfigError, StrategyError
from copilot_quant.examples import SimpleMovingAverage, SmaCrossFast
from copilot_quant.examples.sma_cross import trailing_mean


def trades(strategy, data: pd.DataFrame, symbols: list[str]):
    engine = BacktestEngine(1_000_000.0, commission=0.001, slippage=0.0005)
    engine.add_strategy(strategy)
    result = engine.run(symbols=symbols, data=data)
    assert result.errors == []
    return [(f.timestamp, f.symbol, f.side, f.fill_price, f.fill_quantity) for f in result.fills]


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    feed = SyntheticDataProvider(seed=21, periods=300)
    return {s: feed.get_historical_data(s) for s in ("AAA", "BBB", "CCC")}


@pytest.mark.parametrize("cls", [SimpleMovingAverage, SmaCrossFast])
def test_the_example_trades_its_symbol_the_same_alone_or_among_several(cls, frames):
    alone = trades(cls("BBB", 50), frames["BBB"], ["BBB"])
    among = trades(cls("BBB", 50), combine_symbols(frames), list(frames))
    assert alone, "the data should produce trades"
    assert {t[1] for t in among} == {"BBB"}
    assert among == alone


@pytest.mark.parametrize("cls", [SimpleMovingAverage, SmaCrossFast])
def test_bars_missing_for_other_symbols_do_not_disturb_the_example(cls, frames):
    holed = dict(frames)
    holed["AAA"] = frames["AAA"].iloc[::3]  # AAA trades far less often: rows where only BBB has a bar
    alone = trades(cls("BBB", 50), frames["BBB"], ["BBB"])
    among = trades(cls("BBB", 50), combine_symbols(holed), list(holed))
    assert among == alone


def test_the_two_versions_agree_when_the_traded_symbol_itself_has_gaps(frames):
    holed = dict(frames)
    holed["BBB"] = frames["BBB"].drop(index=frames["BBB"].index[40:200:7])
    data = combine_symbols(holed)
    guide = trades(SimpleMovingAverage("BBB", 50), data, list(holed))
    fast = trades(SmaCrossFast("BBB", 50), data, list(holed))
    assert guide
    assert guide == fast


def test_several_example_instances_share_one_account(frames):
    data = combine_symbols(frames)
    engine = BacktestEngine(1_000_000.0)
    for symbol in frames:
        engine.add_strategy(SmaCrossFast(symbol, 10))
    result = engine.run(symbols=list(frames), data=data)
    assert {f.symbol for f in result.fills} == set(frames)
    assert result.strategy_name.count("SmaCrossFast") == 3


def test_trailing_mean_is_the_mean_of_the_last_n_values_and_nan_before():
    values = pd.Series([1.0, 2.0, 4.0, 8.0, 16.0])
    out = trailing_mean(values, 3)
    assert out.isna().tolist() == [True, True, False, False, False]
    assert out.iloc[2:].tolist() == [7 / 3, 14 / 3, 28 / 3]
    assert trailing_mean(pd.Series([1.0]), 3).isna().all()
    closes = SyntheticDataProvider(seed=1, periods=200).get_historical_data("Z")["Close"]
    for k in (29, 120, 199):  # bit-identical to the guide's closes.tail(n).mean()
        assert trailing_mean(closes, 30).iloc[k] == closes.iloc[: k + 1].tail(30).mean()


@pytest.mark.parametrize("cls", [SimpleMovingAverage, SmaCrossFast])
@pytest.mark.parametrize(("fast", "slow", "quantity"), [(30, 10, 10), (10, 10, 10), (0, 30, 10), (10, 30, 0)])
def test_bad_parameters_are_config_errors(cls, fast, slow, quantity):
    with pytest.raises(ConfigError):
        cls("AAPL", quantity, fast_period=fast, slow_period=slow)


def test_the_guide_example_on_real_sample_data_end_to_end():
    engine = BacktestEngine(initial_capital=100_000, data_provider=SampleDataProvider(), commission=0.001)
    engine.add_strategy(SimpleMovingAverage(symbol="MSFT", quantity=100))
    result = engine.run("2010-01-01", "2012-12-31", ["MSFT"])
    assert result.errors == []
    assert len(result.fills) >= 10
    assert len(result.equity_curve) == len(result.prices) > 700
    assert result.final_value == pytest.approx(engine.get_portfolio_value())
    assert [f.side.value for f in result.fills[:2]] == ["buy", "sell"]


# ------------------------------------------------------------------ issue 16: the run's symbols, fills
@pytest.mark.parametrize("cls", [SimpleMovingAverage, SmaCrossFast])
def test_the_example_trades_the_symbol_it_is_run_on(cls, frames):
    fills = trades(cls(quantity=50), frames["CCC"], ["CCC"])
    assert fills, "the data should produce trades"
    assert {f[1] for f in fills} == {"CCC"}


@pytest.mark.parametrize("cls", [SimpleMovingAverage, SmaCrossFast])
def test_the_example_refuses_a_symbol_the_run_has_no_data_for(cls, frames):
    engine = BacktestEngine(1_000_000.0)
    engine.add_strategy(cls(symbol="AAPL"))
    with pytest.raises(StrategyError, match=r"trade AAPL .* no data for \(symbols: CCC\)"):
        engine.run(symbols=["CCC"], data=frames["CCC"])


@pytest.mark.parametrize("cls", [SimpleMovingAverage, SmaCrossFast])
def test_without_a_symbol_the_example_asks_which_one_of_several(cls, frames):
    engine = BacktestEngine(1_000_000.0)
    engine.add_strategy(cls())
    with pytest.raises(StrategyError, match=r"trades one symbol and this run has 3: AAA, BBB, CCC"):
        engine.run(symbols=list(frames), data=combine_symbols(frames))


@pytest.mark.parametrize("cls", [SimpleMovingAverage, SmaCrossFast])
def test_a_rejected_buy_never_makes_the_example_sell_shares_it_does_not_hold(cls, frames):
    # 1,000 shares cost far more than the cash: every buy is rejected. The example must not then "sell
    # back" shares it never got, which would open a short it never meant (issue 16: --max-order-qty 5).
    engine = BacktestEngine(1_000.0, allow_short=True)
    engine.add_strategy(cls(quantity=1_000))
    result = engine.run(symbols=["BBB"], data=frames["BBB"])
    assert result.orders, "the data should produce signals"
    assert {str(o.status) for o in result.orders} <= {"rejected", "cancelled"}  # the last: at the end
    assert {str(o.side) for o in result.orders} == {"buy"}
    assert result.fills == []


@pytest.mark.parametrize("tif", ["day", "gtc"])
def test_the_two_versions_agree_when_orders_fill_only_partly(tif, frames):
    # a volume limit leaves remainders working (GTC) or expiring (DAY): both classes must still agree
    def run(cls):
        engine = BacktestEngine(1_000_000.0, volume_limit=1e-4)  # ~100 of a bar's ~1e6 shares
        engine.add_strategy(cls(quantity=500, time_in_force=tif))
        result = engine.run(symbols=["AAA"], data=frames["AAA"])
        assert result.errors == []
        return result

    slow, fast = run(SimpleMovingAverage), run(SmaCrossFast)
    assert any(0 < o.filled_quantity < o.quantity for o in slow.orders), "some order should fill partly"
    assert [(o.side, o.quantity, o.status, o.filled_quantity) for o in fast.orders] == [
        (o.side, o.quantity, o.status, o.filled_quantity) for o in slow.orders
    ]
