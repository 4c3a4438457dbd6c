"""Continuous futures: orders for "MES" trade the contract of the day; rolls reach the strategy; auto roll."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pandas as pd
import pytest
from copilot_quant.backtest.accounts import InstrumentAccounts, PerContractCommission
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.rolls import Roll
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.errors import ConfigError, UnknownSymbolError
from copilot_quant.model.instruments import InstrumentRegistry
from copilot_quant.model.orders import Fill, Order
from copilot_quant.model.ports import IDataFeed

REG = InstrumentRegistry(reference=date(2026, 12, 1))
# 1 to 16 December 2026: MESZ6 expires on the 18th, so with roll_days=5 MES trades MESH7 from the 11th
INDEX = pd.bdate_range("2026-12-01", "2026-12-16", tz="America/New_York") + pd.Timedelta(hours=16)


def _bars(level: float) -> pd.DataFrame:
    prices = [level + i for i in range(len(INDEX))]
    return pd.DataFrame(
        {"Open": prices, "High": prices, "Low": prices, "Close": prices, "Volume": 100.0}, index=INDEX
    )


class ChainFeed(IDataFeed):
    """MESZ6 at 6000 + i, MESH7 20 points above it, and MES spliced from the contract of each day."""

    def __init__(self) -> None:
        z6, h7 = _bars(6000.0), _bars(6020.0)
        roll = INDEX.searchsorted(pd.Timestamp("2026-12-11", tz="America/New_York"))
        self.bars = {"MESZ6": z6, "MESH7": h7, "MES": pd.concat([z6.iloc[:roll], h7.iloc[roll:]])}
        self.asked: list[str] = []

    def get_historical_data(
        self, symbol: str, start: Any = None, end: Any = None, interval: str = "1d"
    ) -> pd.DataFrame:
        self.asked.append(symbol)
        if symbol not in self.bars:
            raise UnknownSymbolError(f"no data for {symbol}")
        return self.bars[symbol]

    def get_multiple_symbols(
        self, symbols: list[str], start: Any = None, end: Any = None, interval: str = "1d"
    ) -> pd.DataFrame:
        return pd.concat({s: self.get_historical_data(s) for s in symbols}, axis=1).swaplevel(axis=1)


class BuyAndHoldMes(Strategy):
    def __init__(self) -> None:
        super().__init__()
        self.rolls: list[Roll] = []
        self.fills: list[Fill] = []
        self.held: list[float] = []
        self.columns: list[Any] = []

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        self.columns = list(data.columns)
        self.held.append(self.position("MES"))
        return [Order("MES", 2)] if len(data) == 1 else None

    def on_roll(self, roll: Roll) -> None:
        self.rolls.append(roll)

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)


def _run(auto_roll: bool) -> tuple[Any, BuyAndHoldMes, ChainFeed]:
    feed = ChainFeed()
    accounts = InstrumentAccounts(REG, futures_commission=PerContractCommission(0.0))
    engine = BacktestEngine(  # routing and roll accounting at the bars' prices: no spread
        100_000,
        data_provider=feed,
        commission=0.0,
        slippage=0.0,
        instruments=accounts,
        auto_roll=auto_roll,
        spread=None,
    )
    strategy = BuyAndHoldMes()
    engine.add_strategy(strategy)
    result = engine.run("2026-12-01", "2026-12-16", ["MES"])
    return result, strategy, feed


def test_an_order_for_the_continuous_symbol_trades_the_contract_of_the_day() -> None:
    result, strategy, feed = _run(auto_roll=False)
    assert set(feed.asked) == {"MES", "MESZ6", "MESH7"}
    # the strategy sees only what it asked for: flat columns of MES
    assert strategy.columns == ["Open", "High", "Low", "Close", "Volume"]
    assert strategy.symbols == ("MES",)
    (fill,) = result.fills
    assert (fill.symbol, fill.fill_price, fill.fill_quantity) == ("MESZ6", 6001.0, 2.0)
    assert list(result.positions) == ["MESZ6"]
    # position("MES") sums the root's contracts
    assert strategy.held == [0.0] + [2.0] * (len(INDEX) - 1)
    (roll,) = strategy.rolls
    assert (roll.symbol, roll.old, roll.new, roll.orders) == ("MES", "MESZ6", "MESH7", [])
    assert roll.timestamp == INDEX[8].tz_convert("UTC").to_pydatetime()
    # still in MESZ6: marked at its last close, 6011, times 5 per point
    assert result.final_value == pytest.approx(100_000 + (6011 - 6001) * 2 * 5)


def test_the_automatic_roll_moves_the_position_into_the_new_contract() -> None:
    result, strategy, _ = _run(auto_roll=True)
    (roll,) = strategy.rolls
    assert [(o.symbol, o.side.value, o.quantity) for o in roll.orders] == [
        ("MESZ6", "sell", 2.0),
        ("MESH7", "buy", 2.0),
    ]
    # executed at the next bar's open (14 December): MESZ6 at 6009, MESH7 at 6029
    assert [(f.symbol, f.fill_price) for f in strategy.fills] == [
        ("MESZ6", 6001.0),
        ("MESZ6", 6009.0),
        ("MESH7", 6029.0),
    ]
    assert list(result.positions) == ["MESH7"]
    assert strategy.held[-1] == 2.0
    # 8 points realized on MESZ6 and 2 unrealized on MESH7, × 2 contracts × 5
    assert result.final_value == pytest.approx(100_000 + (8 + 2) * 2 * 5)
    assert result.closed_trades["pnl"].tolist() == pytest.approx([80.0])


def test_a_data_frame_without_the_contracts_is_refused_by_name() -> None:
    engine = BacktestEngine(100_000, instruments=REG)
    engine.add_strategy(BuyAndHoldMes())
    with pytest.raises(ConfigError, match="MESZ6, MESH7"):
        engine.run(symbols=["MES"], data=ChainFeed().bars["MES"])


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_roll_days_must_be_a_whole_number(bad: Any) -> None:
    with pytest.raises(ConfigError, match="roll_days"):
        BacktestEngine(100_000, data_provider=ChainFeed(), instruments=REG, roll_days=bad)


def test_a_contract_held_past_its_last_trade_date_is_settled_at_its_last_close() -> None:
    # MESZ6 stops trading on Friday 18 December 2026; bars until the 22nd (none for MESZ6 after the 18th)
    index = pd.bdate_range("2026-12-14", "2026-12-22", tz="America/New_York") + pd.Timedelta(hours=16)
    prices = [6000.0 + i for i in range(len(index))]
    z6 = pd.DataFrame({"Open": prices, "High": prices, "Low": prices, "Close": prices}, index=index)
    z6.loc[z6.index.date > date(2026, 12, 18)] = float("nan")
    h7 = z6.ffill() + 20
    data = pd.concat({"MESZ6": z6, "MESH7": h7}, axis=1).swaplevel(axis=1).sort_index(axis=1)

    class HoldThenTryAgain(Strategy):
        def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
            n = len(data)
            return [Order("MESZ6", 1)] if n in (1, len(index) - 1) else None

    engine = BacktestEngine(
        100_000,
        commission=0.0,
        slippage=0.0,
        instruments=InstrumentAccounts(REG, futures_commission=PerContractCommission(0.0)),
        spread=None,  # settlement at the last close: accounting arithmetic, no spread
    )
    engine.add_strategy(HoldThenTryAgain())
    result = engine.run(symbols=["MESZ6", "MESH7"], data=data)
    bought, settled = result.fills
    assert (bought.fill_price, settled.fill_price, settled.order.tag) == (6001.0, 6004.0, "expiry")
    assert settled.timestamp == index[5].tz_convert("UTC").to_pydatetime()  # Monday the 21st
    assert result.positions == {}
    late = result.orders[-1]
    assert late.reject_reason == "MESZ6 stopped trading on 2026-12-18 (its last trade date)"
    assert result.final_value == pytest.approx(100_000 + 3 * 5)


def test_mes_held_across_two_quarterly_rolls_on_the_synthetic_chain() -> None:
    from copilot_quant.data.providers import SyntheticDataProvider

    engine = BacktestEngine(100_000, data_provider=SyntheticDataProvider(), slippage=0.0, auto_roll=True)
    strategy = BuyAndHoldMes()
    engine.add_strategy(strategy)
    result = engine.run("2026-09-01", "2026-12-31", ["MES"])
    assert [(r.old, r.new) for r in strategy.rolls] == [("MESU6", "MESZ6"), ("MESZ6", "MESH7")]
    # each roll closes the old contract and opens the new one at the same bar's open
    fills = [(f.symbol, f.side.value, f.fill_quantity, f.timestamp) for f in result.fills]
    assert [f[:3] for f in fills] == [
        ("MESU6", "buy", 2.0),
        ("MESU6", "sell", 2.0),
        ("MESZ6", "buy", 2.0),
        ("MESZ6", "sell", 2.0),
        ("MESH7", "buy", 2.0),
    ]
    assert fills[1][3] == fills[2][3]
    assert fills[3][3] == fills[4][3]
    assert set(strategy.held[1:]) == {2.0}  # position("MES") never moves through the rolls
    assert list(result.positions) == ["MESH7"]
    # equity from the fills alone: cash paid and received per point × 5, the contract held at its last close
    last = float(result.prices["MESH7"].dropna().iloc[-1])
    pnl = sum(-f.signed_quantity * f.fill_price * 5 for f in result.fills) + 2 * last * 5
    costs = sum(f.commission for f in result.fills)
    assert result.final_value == pytest.approx(100_000 + pnl - costs)
    assert costs == pytest.approx(10 * (0.25 + 0.35 + 0.02))  # IB's micro rate plus CME and NFA fees


def test_an_evening_bar_belongs_to_the_next_globex_session_for_the_contract_of_the_day() -> None:
    from copilot_quant.backtest.rolls import ContinuousRouter

    # MES rolls to MESH7 on Friday 11 December 2026; Globex's session for the 11th opens at 17:00 Chicago on the 10th
    stamps = pd.DatetimeIndex(
        ["2026-12-10 15:00", "2026-12-10 17:30", "2026-12-11 09:00"], tz="America/Chicago"
    ).tz_convert("UTC")
    router = ContinuousRouter(REG, ["MES"], stamps)
    assert [router.contract("MES", i) for i in range(3)] == ["MESZ6", "MESH7", "MESH7"]
    assert [(r.old, r.new) for r in router.rolls_at(1, stamps[1].to_pydatetime())] == [("MESZ6", "MESH7")]


class SellAfterRoll(BuyAndHoldMes):
    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        self.held.append(self.position("MES"))
        n = len(data)
        if n == 1:
            return [Order("MES", 2)]
        return [Order("MES", 2, side="SELL")] if n == 10 else None


def test_without_auto_roll_a_sell_after_the_roll_closes_the_old_contract() -> None:
    engine = BacktestEngine(  # routing at the bars' prices: no spread
        100_000,
        data_provider=ChainFeed(),
        commission=0.0,
        slippage=0.0,
        spread=None,
        instruments=InstrumentAccounts(REG, futures_commission=PerContractCommission(0.0)),
    )
    strategy = SellAfterRoll()
    engine.add_strategy(strategy)
    result = engine.run("2026-12-01", "2026-12-16", ["MES"])
    # bar 9 (14 December) trades MESH7, but the sell only reduces the MESZ6 position: it closes it
    assert [(f.symbol, f.side.value, f.fill_price) for f in result.fills] == [
        ("MESZ6", "buy", 6001.0),
        ("MESZ6", "sell", 6010.0),
    ]
    assert result.positions == {}
    assert result.orders[1].routed_from == "MES"


def test_the_buy_and_hold_benchmark_of_a_continuous_future_earns_no_roll_gap() -> None:
    """MESZ6 and MESH7 each rise one point a day; the spliced MES jumps 21 points at the roll. A holder of
    MES earns the contracts' one point a day, so the benchmark is that chain, not the spliced closes."""
    result, _, _ = _run(auto_roll=True)
    z6, h7 = _bars(6000.0)["Close"], _bars(6020.0)["Close"]
    roll = INDEX.searchsorted(pd.Timestamp("2026-12-11", tz="America/New_York"))
    # the contract of each step's first bar, held to the step's end
    held = [
        z6.iloc[k] / z6.iloc[k - 1] if k - 1 < roll else h7.iloc[k] / h7.iloc[k - 1]
        for k in range(1, len(INDEX))
    ]
    expected = 1.0
    for step in held:
        expected *= step
    assert result.metrics["benchmark_return"] == pytest.approx(expected - 1.0)
    spliced = (6020.0 + len(INDEX) - 1) / 6000.0 - 1.0
    assert result.metrics["benchmark_return"] < spliced - 0.003  # the 20-point gap is 0.33 %
