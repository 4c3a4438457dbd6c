"""Futures and forex through the backtest engine: equity curves, margin calls and cash per currency."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pandas as pd
import pytest
from copilot_quant.backtest.accounts import MARGIN_REJECT, InstrumentAccounts, PerContractCommission
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.errors import ConfigError
from copilot_quant.model.instruments import InstrumentRegistry
from copilot_quant.model.orders import Order, OrderStatus

REG = InstrumentRegistry(reference=date(2026, 12, 1))


def bars(symbols: dict[str, list[tuple[float, float]]], start: str = "2026-11-30") -> pd.DataFrame:
    """Daily bars from (open, close) pairs per symbol; high/low bracket them."""
    n = len(next(iter(symbols.values())))
    index = pd.date_range(start, periods=n, freq="B", tz="America/New_York") + pd.Timedelta(hours=16)
    frames = {}
    for symbol, rows in symbols.items():
        opens = [o for o, _ in rows]
        closes = [c for _, c in rows]
        frames[symbol] = pd.DataFrame(
            {
                "Open": opens,
                "High": [max(o, c) for o, c in rows],
                "Low": [min(o, c) for o, c in rows],
                "Close": closes,
                "Volume": 1_000.0,
            },
            index=index,
        )
    if len(frames) == 1:
        return next(iter(frames.values()))
    return pd.concat(frames, axis=1).swaplevel(axis=1).sort_index(axis=1)


class Script(Strategy):
    """Sends the given orders after the given bars; records equity and cash per bar."""

    def __init__(self, plan: dict[int, list[Order]]) -> None:
        super().__init__()
        self.plan = plan
        self.bar = -1
        self.seen: list[tuple[float, float]] = []

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        self.bar += 1
        self.seen.append((self.equity, self.cash))
        return self.plan.get(self.bar)


def _engine(capital: float, per_contract: float = 2.0) -> BacktestEngine:
    accounts = InstrumentAccounts(REG, futures_commission=PerContractCommission(per_contract))
    # hand-computed fill prices and equity curves: accounting arithmetic, no spread
    return BacktestEngine(capital, commission=0.001, slippage=0.0, instruments=accounts, spread=None)


def test_an_es_round_trip_through_the_engine_has_the_hand_computed_equity_curve() -> None:
    data = bars({"ESZ6": [(6000, 6004), (6002, 6010), (6008, 6006), (6012.5, 6020), (6020, 6030)]})
    engine = _engine(100_000)
    strategy = Script({0: [Order("ESZ6", 2)], 2: [Order("ESZ6", 2, side="SELL")]})
    engine.add_strategy(strategy)
    result = engine.run(symbols=["ESZ6"], data=data)
    assert [f.fill_price for f in result.fills] == [6002.0, 6012.5]
    expected = [
        100_000.0,
        100_000 - 4 + 2 * (6010 - 6002) * 50,  # bought 2 at the open of bar 1, marked at its close
        100_000 - 4 + 2 * (6006 - 6002) * 50,
        100_000 - 8 + 2 * (6012.5 - 6002) * 50,  # sold at bar 3's open: 1,050 realized
        100_000 - 8 + 1_050.0,
    ]
    assert result.equity_curve.tolist() == pytest.approx(expected)
    assert result.cash_curve.tolist() == pytest.approx([100_000, 99_996, 99_996, 101_042, 101_042])
    assert [e for e, _ in strategy.seen] == pytest.approx(expected)
    assert result.cash_balances == {"USD": pytest.approx(101_042.0)}
    assert result.margin_calls == []
    trade = result.closed_trades.iloc[0]
    # 10.5 points × 2 contracts × 50, less both commissions
    assert trade["pnl"] == pytest.approx(1_050.0 - 8.0)
    assert trade["return"] == pytest.approx((1_050.0 - 8.0) / (6002.0 * 2 * 50))
    assert result.metrics["total_trades"] == 1


def test_a_margin_rejection_and_a_maintenance_breach_are_both_reported() -> None:
    # 30,000 covers one ES contract (25,000 initial); the second is rejected; then the price falls
    # until equity is below the 22,700 maintenance margin
    data = bars(
        {"ESZ6": [(6000, 6000), (6000, 6000), (6000, 5950), (5950, 5840), (5840, 5900), (5900, 5990)]}
    )
    engine = _engine(30_000, per_contract=0.0)
    strategy = Script({0: [Order("ESZ6", 1)], 1: [Order("ESZ6", 1)]})
    engine.add_strategy(strategy)
    result = engine.run(symbols=["ESZ6"], data=data)
    rejected = [o for o in result.orders if o.status is OrderStatus.REJECTED]
    assert len(rejected) == 1
    assert (rejected[0].reject_reason or "").startswith(MARGIN_REJECT)
    # equity: 30,000 - 160 × 50 = 22,000 at bar 3 (< 22,700), 22,500 at bar 4, 29,500 at bar 5
    assert result.equity_curve.tolist() == pytest.approx([30_000, 30_000, 27_500, 22_000, 25_000, 29_500])
    assert len(result.margin_calls) == 1
    call = result.margin_calls[0]
    assert call.bars == 1
    assert call.start == result.equity_curve.index[3]
    assert call.worst_shortfall == pytest.approx(700.0)
    assert call.maintenance_at_start == 22_700.0


def test_a_forex_round_trip_keeps_eur_and_usd_and_reports_equity_in_usd() -> None:
    data = bars({"EUR.USD": [(1.1, 1.1), (1.1, 1.105), (1.105, 1.108), (1.11, 1.12)]})
    engine = BacktestEngine(
        100_000, commission=0.001, slippage=0.0, spread=None
    )  # hand-computed prices and accounting (no spread)
    strategy = Script({0: [Order("EUR.USD", 10_000)], 2: [Order("EUR.USD", 10_000, side="SELL")]})
    engine.add_strategy(strategy)
    result = engine.run(symbols=["EUR.USD"], data=data)
    usd_after_buy = 100_000 - 11_000 - 2.0
    expected = [100_000, usd_after_buy + 11_050, usd_after_buy + 11_080, usd_after_buy + 11_100 - 2.0]
    assert result.equity_curve.tolist() == pytest.approx(expected)
    # while EUR is held, cash is the balances' total at the bar's rate: the same as equity
    assert result.cash_curve.tolist() == pytest.approx(expected)
    assert [e for e, _ in strategy.seen] == pytest.approx(expected)
    assert result.cash_balances == pytest.approx({"USD": 100_096.0, "EUR": 0.0})


def test_a_stock_only_run_has_no_futures_fields() -> None:
    data = bars({"AAPL": [(100, 101), (101, 102), (102, 103)]})
    engine = BacktestEngine(
        10_000, commission=0.0, slippage=0.0, spread=None
    )  # hand-computed prices and accounting (no spread)
    engine.add_strategy(Script({0: [Order("AAPL", 10)]}))
    result = engine.run(symbols=["AAPL"], data=data)
    assert result.cash_balances == {}
    assert result.equity_curve.tolist() == [10_000, 10_000 + 10, 10_000 + 20]


def test_a_forex_position_below_its_maintenance_margin_is_a_margin_call() -> None:
    data = bars({"EUR.USD": [(1.1, 1.1), (1.1, 1.1), (1.1, 1.09), (1.09, 1.1)]})
    # hand-computed margin arithmetic (no spread)
    engine = BacktestEngine(
        6_000, slippage=0.0, instruments=InstrumentAccounts(REG, forex_margin=0.05), spread=None
    )
    engine.add_strategy(Script({0: [Order("EUR.USD", 100_000)]}))
    result = engine.run(symbols=["EUR.USD"], data=data)
    # 0.2 bp of 110,000 USD = 2.20; a 100-pip fall costs 1,000 USD
    assert result.equity_curve.tolist() == pytest.approx([6_000, 5_997.8, 4_997.8, 5_997.8])
    (call,) = result.margin_calls
    assert call.start == result.equity_curve.index[2]
    assert call.maintenance_at_start == pytest.approx(100_000 * 1.09 * 0.05)
    assert call.worst_shortfall == pytest.approx(5_450 - 4_997.8)


def _rounded(seen: list[tuple[float, float]]) -> list[tuple[float, ...]]:
    return [tuple(round(v, 6) for v in pair) for pair in seen]


def test_several_strategies_on_futures_each_see_their_own_contracts_in_money() -> None:
    # they were refused by name ("several strategies ... not supported yet"); each book is now in money
    data = bars({"ESZ6": [(6000, 6000), (6002, 6010), (6008, 6020)]})
    engine = _engine(100_000)
    long, short = Script({0: [Order("ESZ6", 2)]}), Script({0: [Order("ESZ6", 1, side="SELL")]})
    engine.add_strategy(long, capital=60_000)
    engine.add_strategy(short)
    result = engine.run(symbols=["ESZ6"], data=data)
    # both filled at bar 1's open, 6002: 2 x 50 per point long, 1 x 50 short; 2.00 per contract
    assert _rounded(long.seen) == (
        [(60_000, 60_000), (60_000 - 4 + 2 * 8 * 50, 60_000 - 4), (60_000 - 4 + 2 * 18 * 50, 60_000 - 4)]
    )
    assert _rounded(short.seen) == (
        [(40_000, 40_000), (40_000 - 2 - 8 * 50, 40_000 - 2), (40_000 - 2 - 18 * 50, 40_000 - 2)]
    )
    assert result.strategies[long.name].final_value + result.strategies[
        "Script#2"
    ].final_value == pytest.approx(result.final_value)
    assert result.final_value == pytest.approx(100_000 - 6 + 18 * 50)


def test_a_currency_without_a_pair_to_value_it_is_refused_by_name() -> None:
    data = bars({"EUR.GBP": [(0.85, 0.85), (0.85, 0.86)]})
    engine = BacktestEngine(100_000, instruments=REG, spread=None)  # the report's hand-computed figures
    engine.add_strategy(Script({}))
    with pytest.raises(ConfigError, match=r"EUR, GBP .*add EUR\.USD, GBP\.USD"):
        engine.run(symbols=["EUR.GBP"], data=data)


def test_the_report_shows_cash_by_currency_multipliers_and_margin_calls(tmp_path: Any) -> None:
    data = bars(
        {"ESZ6": [(6000, 6000), (6000, 6000), (6000, 5950), (5950, 5840), (5840, 5900), (5900, 5990)]}
    )
    engine = _engine(30_000, per_contract=0.0)
    engine.add_strategy(Script({0: [Order("ESZ6", 1)]}))
    result = engine.run(symbols=["ESZ6"], data=data)
    page = result.to_html(tmp_path / "report.html").read_text()
    assert "Cash by currency at the end: USD 30,000.00" in page  # the loss is not realized yet
    assert "ESZ6 × 50" in page
    assert "Margin calls (1)" in page
    assert "<td>22,000.00</td><td>22,700.00</td><td>700.00</td>" in page
    # the symbol table's turnover counts the multiplier: one contract at 6,000 × 50
    from copilot_quant.reports.backtest_tables import symbol_summary

    assert symbol_summary(result).loc["ESZ6", "turnover"] == 6_000 * 50


def test_the_fast_path_trades_futures_exactly_like_the_guide_style_path() -> None:
    from copilot_quant.examples.sma_cross import SimpleMovingAverage, SmaCrossFast

    rows = [(6000 + 10 * ((i * 7) % 13) - 60, 6000 + 10 * ((i * 5) % 11) - 50) for i in range(80)]
    data = bars({"ESZ6": [(float(o), float(c)) for o, c in rows]}, start="2026-06-01")
    results = []
    for strategy in (
        SimpleMovingAverage(quantity=2, fast_period=3, slow_period=8),
        SmaCrossFast(quantity=2, fast_period=3, slow_period=8),
    ):
        engine = _engine(200_000)
        engine.add_strategy(strategy)
        results.append(engine.run(symbols=["ESZ6"], data=data))
    guide, fast = results
    assert len(guide.fills) > 4
    assert [(f.timestamp, f.fill_price, f.signed_quantity) for f in guide.fills] == [
        (f.timestamp, f.fill_price, f.signed_quantity) for f in fast.fills
    ]
    assert guide.equity_curve.tolist() == pytest.approx(fast.equity_curve.tolist())
    log = guide.get_trade_log()
    first = guide.fills[0]
    assert log["total_cost"].iloc[0] == pytest.approx(first.fill_price * 2 * 50 + first.commission)


@pytest.mark.parametrize(
    ("commission", "per_contract"), [("ibkr-tiered", 0.85), ("ibkr-fixed", 0.85), (0.001, 0.85)]
)
def test_futures_pay_ibs_plan_beside_the_stock_commission(commission: Any, per_contract: float) -> None:
    data = bars({"ESZ6": [(6000, 6000), (6000, 6000)]})
    engine = BacktestEngine(100_000, commission=commission, slippage=0.0)
    engine.add_strategy(Script({0: [Order("ESZ6", 1)]}))
    (fill,) = engine.run(symbols=["ESZ6"], data=data).fills
    assert fill.commission == pytest.approx(per_contract + 1.38 + 0.02)
    plan = engine.broker.accounts.costs.futures_plan  # type: ignore[union-attr]
    assert plan == ("fixed" if commission == "ibkr-fixed" else "tiered")


def test_several_strategies_holding_a_contract_at_expiry_are_each_settled_on_their_own_book() -> None:
    # ESZ6 trades until 2026-12-18: the bar of the 21st settles what each strategy still holds, at the 18th's close
    rows = [(6000, 6000), (6002, 6010), (6008, 6015), (6015, 6020), (6030, 6030)]  # 15th to 21st
    data = bars({"ESZ6": rows}, start="2026-12-15")
    engine = _engine(100_000)
    long, short = Script({0: [Order("ESZ6", 2)]}), Script({0: [Order("ESZ6", 1, side="SELL")]})
    engine.add_strategy(long, capital=60_000)
    engine.add_strategy(short)
    result = engine.run(symbols=["ESZ6"], data=data)
    parts = result.strategies
    mine, theirs = parts[long.name], parts["Script#2"]
    assert [(o.tag, o.side.value, o.quantity) for o in mine.orders if o.tag == "expiry"] == [
        ("expiry", "sell", 2.0)
    ]
    assert [(o.tag, o.side.value, o.quantity) for o in theirs.orders if o.tag == "expiry"] == [
        ("expiry", "buy", 1.0)
    ]
    assert mine.positions == theirs.positions == {}
    assert result.positions == {}
    # settled at 6020: 18 points x 50 on 2 long and on 1 short, less 2.00 per contract in and out
    assert mine.final_value == pytest.approx(60_000 + 2 * 18 * 50 - 8)
    assert theirs.final_value == pytest.approx(40_000 - 18 * 50 - 4)
    assert mine.final_value + theirs.final_value == pytest.approx(result.final_value)


def test_strategies_on_both_sides_of_an_expiring_contract_are_settled_without_a_short_the_account_forbids() -> (
    None
):
    # the account is long 1 (2 - 1) and may not sell short: the short is bought back first, then the long sold
    rows = [(6000, 6000), (6002, 6010), (6008, 6015), (6015, 6020), (6030, 6030)]  # 15th to 21st
    accounts = InstrumentAccounts(REG, futures_commission=PerContractCommission(2.0))
    engine = BacktestEngine(
        100_000, commission=0.001, slippage=0.0, instruments=accounts, spread=None, allow_short=False
    )
    long, short = Script({0: [Order("ESZ6", 2)]}), Script({1: [Order("ESZ6", 1, side="SELL")]})
    engine.add_strategy(long)
    engine.add_strategy(short)
    result = engine.run(symbols=["ESZ6"], data=bars({"ESZ6": rows}, start="2026-12-15"))
    settled = [(o.side.value, o.quantity, o.status.value) for o in result.orders if o.tag == "expiry"]
    assert settled == [("buy", 1.0, "filled"), ("sell", 2.0, "filled")]
    assert result.positions == {}
    assert all(not part.positions for part in result.strategies.values())
